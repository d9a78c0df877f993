"""``dead-letter list | show | replay | purge``: what could not be delivered.

Replay moves dead letters back to the parked table, due now: the running
daemon (or the next ``run``) retries them through the same delivery path,
rate limits and all. Nothing here talks to a receiver itself.
"""

from __future__ import annotations

import contextlib
import sqlite3
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import orjson

from wazuh_integrator.store import DeadLetter, StateStore, StoreError


@dataclass(frozen=True)
class Selection:
    """Which dead letters a command acts on."""

    ids: tuple[int, ...] = ()
    integration: str | None = None  # a block key (slack#0) or a name (slack)
    everything: bool = False

    @property
    def is_empty(self) -> bool:
        return not self.ids and self.integration is None and not self.everything


class SelectionError(Exception):
    """The selection names something that does not exist; nothing was done."""


def _check_selection(
    letters: list[DeadLetter], selection: Selection, known_integrations: frozenset[str]
) -> None:
    """Refuse ids that are not dead letters and integrations nobody knows."""
    if selection.integration is not None:
        known = known_integrations | {letter.integration_key for letter in letters}
        known |= {letter.integration_name for letter in letters}
        if selection.integration not in known:
            raise SelectionError(
                f"no integration {selection.integration!r} in the configuration or the"
                " dead letters (a name like slack, or a block like slack#0)"
            )
    existing = {letter.id for letter in letters}
    missing = [str(letter_id) for letter_id in selection.ids if letter_id not in existing]
    if missing:
        raise SelectionError(f"no dead letter with id {', '.join(missing)}; nothing done")


def _alert_id(letter: DeadLetter) -> str | None:
    try:
        alert = orjson.loads(letter.alert)
    except orjson.JSONDecodeError:
        return None
    value = alert.get("id") if isinstance(alert, dict) else None
    return value if isinstance(value, str) else None


def _matches(letter: DeadLetter, selection: Selection) -> bool:
    if selection.ids and letter.id not in selection.ids:
        return False
    if selection.integration is None:
        return True
    return selection.integration in (letter.integration_key, letter.integration_name)


def _as_json(letter: DeadLetter, *, with_alert: bool) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": letter.id,
        "integration": letter.integration_key,
        "name": letter.integration_name,
        "alert_id": _alert_id(letter),
        "attempts": letter.attempts,
        "status": letter.status,
        "first_failed_at": _iso(letter.first_failed_at),
        "failed_at": _iso(letter.failed_at),
        "last_error": letter.last_error,
    }
    if with_alert:
        try:
            record["alert"] = orjson.loads(letter.alert)
        except orjson.JSONDecodeError:
            record["alert"] = letter.alert.decode("utf-8", errors="replace")
    return record


def _iso(stamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(stamp))


def _all_letters(database: Path) -> list[DeadLetter]:
    letters: list[DeadLetter] = []
    with StateStore.open_readonly(database) as reader:
        since = 0
        while batch := reader.dead_letters(limit=1000, since_id=since):
            letters.extend(batch)
            since = batch[-1].id
    return letters


def list_dead_letters(
    database: Path, selection: Selection, *, as_json: bool, limit: int, out: TextIO = sys.stdout
) -> int:
    if not database.exists():
        print("No state yet: the daemon has not run with this home.", file=out)
        return 0
    letters = [letter for letter in _all_letters(database) if _matches(letter, selection)]
    return print_letters(letters, as_json=as_json, limit=limit, out=out)


def print_letters(letters: list[DeadLetter], *, as_json: bool, limit: int, out: TextIO) -> int:
    """``list``'s output for ``letters``, oldest first (also the cluster's)."""
    shown = letters[-limit:] if limit else letters
    if as_json:
        for letter in shown:
            out.write(orjson.dumps(_as_json(letter, with_alert=False)).decode() + "\n")
        return 0
    if not letters:
        print("No dead letters.", file=out)
        return 0
    print(
        f"{'ID':>6}  {'INTEGRATION':<16} {'ALERT ID':<24} {'TRIES':>5}  {'FAILED AT':<24} ERROR",
        file=out,
    )
    for letter in shown:
        error = letter.last_error.replace("\n", " ")
        print(
            f"{letter.id:>6}  {letter.integration_key:<16} {_alert_id(letter) or '-':<24} "
            f"{letter.attempts:>5}  {_iso(letter.failed_at):<24} {error[:100]}",
            file=out,
        )
    if len(shown) < len(letters):
        print(f"({len(letters) - len(shown)} older not shown; use --limit 0 for all)", file=out)
    return 0


def show_dead_letter(database: Path, letter_id: int, out: TextIO = sys.stdout) -> int:
    letters = _all_letters(database) if database.exists() else []
    return print_letter(letters, letter_id, out)


def print_letter(letters: list[DeadLetter], letter_id: int, out: TextIO) -> int:
    """``show``'s output: the letter with ``letter_id`` among ``letters``, alert included."""
    for letter in letters:
        if letter.id == letter_id:
            text = orjson.dumps(_as_json(letter, with_alert=True), option=orjson.OPT_INDENT_2)
            out.write(text.decode() + "\n")
            return 0
    print(f"error: no dead letter with id {letter_id}", file=sys.stderr)
    return 1


def _selected_ids(database: Path, selection: Selection) -> list[int]:
    return [letter.id for letter in _all_letters(database) if _matches(letter, selection)]


@contextlib.contextmanager
def _writing(database: Path) -> Iterator[StateStore]:
    """The store, opened to write one transaction; a write that fails (a full
    disk, a read-only file) is a :class:`StoreError` naming the database."""
    try:
        with StateStore(database) as store:
            yield store
    except sqlite3.Error as exc:
        # The transaction is not committed: every dead letter stays as it was.
        raise StoreError(
            f"{database}: cannot write the state database: {exc}; nothing was changed"
        ) from exc


def replay_dead_letters(
    database: Path, selection: Selection, *, dry_run: bool = False, out: TextIO = sys.stdout
) -> int:
    """Move the selected dead letters back to the parked table, due now."""
    ids = _selected_ids(database, selection)
    if dry_run or not ids:
        return _would(ids, "queued for delivery", dry_run=dry_run, out=out)
    with _writing(database) as store:
        now = time.time()
        letters = store.take_dead_letters(ids) if ids else []
        for letter in letters:
            store.park(
                letter.integration_key,
                letter.alert,
                attempts=0,
                first_failed_at=now,
                next_attempt_at=now,
                last_error=f"replayed dead letter {letter.id}: {letter.last_error}",
            )
        store.flush()
    print(
        f"{len(letters)} dead letter(s) queued for delivery; the running daemon retries them now"
        " (or the next `run` does).",
        file=out,
    )
    return 0


def purge_dead_letters(
    database: Path, selection: Selection, *, dry_run: bool = False, out: TextIO = sys.stdout
) -> int:
    ids = _selected_ids(database, selection)
    if dry_run or not ids:
        return _would(ids, "deleted", dry_run=dry_run, out=out)
    with _writing(database) as store:
        deleted = store.delete_dead_letters(ids) if ids else 0
        store.flush()
    print(f"{deleted} dead letter(s) deleted.", file=out)
    return 0


def _would(ids: list[int], done: str, *, dry_run: bool, out: TextIO) -> int:
    if not ids:
        print("No dead letter matches: nothing done.", file=out)
        return 0
    shown = ", ".join(str(letter_id) for letter_id in ids)
    print(f"Dry run: {len(ids)} dead letter(s) would be {done}: {shown}", file=out)
    return 0


def dead_letter_command(
    action: str,
    database: Path,
    *,
    ids: Sequence[int] = (),
    integration: str | None = None,
    everything: bool = False,
    as_json: bool = False,
    limit: int = 50,
    dry_run: bool = False,
    known_integrations: frozenset[str] = frozenset(),
) -> int:
    """Entry point used by the CLI. ``known_integrations`` are the names and
    block keys of the configuration: ``--integration`` must name one of them
    or one found in the dead letters."""
    selection = Selection(tuple(ids), integration, everything)
    try:
        if selection.ids or selection.integration is not None:
            letters = _all_letters(database) if database.exists() else []
            _check_selection(letters, selection, known_integrations)
        if action == "list":
            return list_dead_letters(
                database, selection, as_json=as_json, limit=limit, out=sys.stdout
            )
        if action == "show":
            if len(ids) != 1:
                print("error: show takes exactly one dead letter id", file=sys.stderr)
                return 2
            return show_dead_letter(database, ids[0])
        if action in ("replay", "purge"):
            if selection.is_empty:
                print("error: name dead letter ids, --integration, or --all", file=sys.stderr)
                return 2
            if not database.exists():
                print("No dead letters.")
                return 0
            if action == "replay":
                return replay_dead_letters(database, selection, dry_run=dry_run, out=sys.stdout)
            return purge_dead_letters(database, selection, dry_run=dry_run, out=sys.stdout)
    except SelectionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"error: unknown action {action!r}", file=sys.stderr)
    return 2
