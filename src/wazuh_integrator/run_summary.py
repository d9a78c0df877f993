"""What ``run --once`` says when it is done, and the exit status it ends with.

A batch run that leaves alerts undelivered must not look like one that
delivered everything: it prints what happened to the alerts it read and
exits with a status that tells a script which case it is in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, TextIO

__all__ = [
    "EXIT_DEAD_LETTERED",
    "EXIT_DELIVERED",
    "EXIT_PARKED",
    "IntegrationSummary",
    "RunSummary",
]

# Everything this run handled was delivered, and nothing waits in the store.
EXIT_DELIVERED: Final = 0
# Some deliveries are parked in the state store: the receiver failed, and the
# next run (or the daemon) retries them. Nothing needs a person yet.
EXIT_PARKED: Final = 3
# Some deliveries were given up in this run: they need a person
# (`dead-letter list`, fix the cause, `dead-letter replay`).
EXIT_DEAD_LETTERED: Final = 4


@dataclass(frozen=True)
class IntegrationSummary:
    key: str
    delivered: int
    parked: int  # parkings during this run (spills included)
    dead_lettered: int
    failed: int  # neither delivered nor stored: read again by the next run
    still_parked: int  # rows waiting in the store at the end, older ones included


@dataclass(frozen=True)
class RunSummary:
    lines_read: int
    invalid: int
    integrations: list[IntegrationSummary] = field(default_factory=list)
    # Rows parked under a key no running block has (a block removed or moved,
    # docs/state.md): they wait in the store, so the run did not deliver all.
    unconfigured_parked: dict[str, int] = field(default_factory=dict)

    @property
    def still_parked(self) -> int:
        return sum(i.still_parked for i in self.integrations) + self.unconfigured

    @property
    def unconfigured(self) -> int:
        return sum(self.unconfigured_parked.values())

    @property
    def dead_lettered(self) -> int:
        return sum(i.dead_lettered for i in self.integrations)

    @property
    def failed(self) -> int:
        return sum(i.failed for i in self.integrations)

    def exit_status(self) -> int:
        if self.dead_lettered:
            return EXIT_DEAD_LETTERED
        if self.still_parked or self.failed:
            return EXIT_PARKED
        return EXIT_DELIVERED

    def write(self, out: TextIO) -> None:
        read = _count(self.lines_read, "line")
        out.write(f"run --once: {read} read, {self.invalid:,} invalid.\n")
        for i in self.integrations:
            out.write(
                f"  {i.key}: {i.delivered:,} delivered, {i.parked:,} parked,"
                f" {i.dead_lettered:,} dead-lettered"
                + (f", {i.failed:,} not stored (read again next run)" if i.failed else "")
                + f"; {i.still_parked:,} still parked in the store\n"
            )
        for key, count in sorted(self.unconfigured_parked.items()):
            out.write(
                f"  {key}: not in the configuration; {count:,} still parked in the store,"
                " waiting for a block with that key\n"
            )
        status = self.exit_status()
        if status == EXIT_DEAD_LETTERED:
            out.write(
                f"Exit status {status}: {_count(self.dead_lettered, 'delivery')}"
                f" {_were(self.dead_lettered)} given up;"
                " see `wazuh-integrator dead-letter list`.\n"
            )
        elif status == EXIT_PARKED and self.still_parked:
            retried = (
                f" {self.unconfigured:,} of them wait for a block that is not in the"
                " configuration (docs/state.md); the next run or the daemon retries the others.\n"
                if self.unconfigured
                else " the next run or the daemon retries them.\n"
            )
            out.write(
                f"Exit status {status}: {_count(self.still_parked, 'delivery')}"
                f" {'is' if self.still_parked == 1 else 'are'} still parked;" + retried
            )
        elif status == EXIT_PARKED:
            out.write(
                f"Exit status {status}: {_count(self.failed, 'delivery')} could not be stored;"
                " the next run reads their alerts again.\n"
            )


def _count(number: int, noun: str) -> str:
    """``1 line``, ``2 lines``, ``1 delivery``, ``1,200 deliveries``."""
    if number == 1:
        return f"1 {noun}"
    plural = f"{noun[:-1]}ies" if noun.endswith("y") else f"{noun}s"
    return f"{number:,} {plural}"


def _were(number: int) -> str:
    return "was" if number == 1 else "were"
