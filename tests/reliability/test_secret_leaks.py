"""The leak scan: unique secrets in every integration, receivers that echo all
they got, and every place the daemon writes text searched for each secret in
every encoding a receiver may use.

Searched: the daemon's log, ``dead-letter list`` (text and JSON) and ``show``,
``/metrics``, ``/health``, every row and every byte of the state database,
anything left in the state directory, and the events sent to analysisd.
"""

from __future__ import annotations

import base64
import json
import re
import sqlite3
import sys
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path
from urllib.parse import quote, quote_plus

import aiohttp
import pytest
from aiohttp import web
from tests.e2e.harness import Daemon, alerts_file, append_alerts, cli, make_alert, run_once, until
from tests.integrations.enrich_support import DatagramReceiver, load_json
from tests.reliability import support
from tests.reliability.support import FaultReport, free_port, state_db

SECTION = "Secrets and TLS"
GOLDEN = Path(__file__).resolve().parent.parent / "data" / "golden"

# Each secret is unique, so that finding any part of it anywhere is a leak.
SLACK_PARTS = ("TSLKaa11x", "BSLKbb22x", "slkTokenCC33xyz")
SHUFFLE_TOKEN = "webhook_shfDD44secretx"
PAGERDUTY_KEY = "pdKey EE55 with+plus/slash"
VIRUSTOTAL_KEY = "vtKey FF66+/SIX"
MALTIVERSE_KEY = "mvKeyGG77secret"
MALTIVERSE_PATH = "mvPathHH88zz"
SCRIPT_KEY = "scriptKeyII99 x\ty"
SCRIPT_HOOK_TOKEN = "scrHookJJ00tok"
SECRETS = (
    *SLACK_PARTS,
    "/".join(SLACK_PARTS),
    SHUFFLE_TOKEN,
    PAGERDUTY_KEY,
    VIRUSTOTAL_KEY,
    MALTIVERSE_KEY,
    MALTIVERSE_PATH,
    SCRIPT_KEY,
    SCRIPT_HOOK_TOKEN,
)

LEAKY_SCRIPT = """\
#!{python}
import json, sys, urllib.parse
for value in sys.argv[2:4]:
    print("got", value, urllib.parse.quote(value, safe=""), urllib.parse.quote_plus(value))
    print(json.dumps({{"echo": value}}))
sys.exit(1)
"""


def encodings(secret: str) -> set[str]:
    """``secret`` as a careless receiver may echo it (written independently of
    the daemon's own list)."""
    forms = {secret, " ".join(secret.split())}
    for encoded in (
        quote(secret, safe=""),
        quote(secret),
        quote_plus(secret, safe=""),
        quote_plus(secret),
    ):
        forms.add(encoded)
        forms.add(re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), encoded))
    escaped = json.dumps(secret)[1:-1]
    forms |= {escaped, escaped.replace("/", "\\/")}
    return forms


class EchoService:
    """Answers every request with an error quoting everything it was sent."""

    def __init__(self) -> None:
        self.requests = 0
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        body = (await request.read()).decode(errors="replace")
        echoed = (
            f"raw path {request.raw_path} path {request.path} query {request.query_string} "
            f"headers {dict(request.headers)} body {body}"
        )
        text = "\n".join(
            [
                echoed,
                quote(echoed, safe=""),
                quote_plus(echoed),
                json.dumps({"error": echoed}).replace("/", "\\/"),
            ]
        )
        # Shuffle gets a 500 (retried, then parked with its error); the others a
        # 400 or 403 (given up at once: a dead letter with its error).
        if "hooks" in request.path:
            status = 500
        elif request.path.startswith("/vtapi"):
            status = 403
        else:
            status = 400
        return web.Response(status=status, text=text)

    @classmethod
    async def started(cls) -> EchoService:
        service = cls()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", service.handle)
        service._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await service._runner.setup()
        site = web.TCPSite(service._runner, "127.0.0.1", 0)
        await site.start()
        service.url = f"http://127.0.0.1:{service._runner.addresses[0][1]}"
        return service

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


home = support.home


@pytest.fixture
async def echo() -> AsyncIterator[EchoService]:
    service = await EchoService.started()
    yield service
    await service.stop()


@pytest.fixture
def analysisd(home: Path) -> Iterator[DatagramReceiver]:
    receiver = DatagramReceiver(home / "queue" / "sockets" / "queue")
    yield receiver
    receiver.close()


def block(name: str, *, hook_url: str = "", api_key: str = "") -> str:
    parts = [f"<name>{name}</name>", "<alert_format>json</alert_format>"]
    if hook_url:
        parts.append(f"<hook_url>{hook_url}</hook_url>")
    if api_key:
        parts.append(f"<api_key>{api_key}</api_key>")
    return f"<integration>{''.join(parts)}</integration>"


def configure(home: Path, base: str, metrics_port: int) -> None:
    blocks = [
        block("slack", hook_url=f"{base}/services/{'/'.join(SLACK_PARTS)}"),
        block("shuffle", hook_url=f"{base}/api/v1/hooks/{SHUFFLE_TOKEN}"),
        block("pagerduty", hook_url=f"{base}/v2/enqueue", api_key=PAGERDUTY_KEY),
        block("virustotal", hook_url=base, api_key=VIRUSTOTAL_KEY),
        block("maltiverse", hook_url=f"{base}/{MALTIVERSE_PATH}", api_key=MALTIVERSE_KEY),
        block(
            "custom-leaky",
            hook_url=f"https://example.invalid/hooks/{SCRIPT_HOOK_TOKEN}",
            api_key=SCRIPT_KEY,
        ),
    ]
    (home / "etc" / "ossec.conf").write_text(
        "<ossec_config>\n" + "\n".join(blocks) + "\n</ossec_config>\n"
    )
    quick = 'initial_backoff = "0.05s"\nmax_backoff = "0.2s"\nmax_retry_age = "1s"\n'
    (home / "etc" / "integrator.toml").write_text(
        f'metrics_address = "127.0.0.1:{metrics_port}"\n'
        + "".join(f"[integrations.{name}]\n{quick}" for name in ("slack", "shuffle", "pagerduty"))
        + f'[integrations.virustotal]\napi_version = "v2"\n{quick}'
        + f"[integrations.maltiverse]\n{quick}"
    )
    script = home / "integrations" / "custom-leaky"
    script.write_text(LEAKY_SCRIPT.format(python=sys.executable))
    script.chmod(0o750)


def write_alerts(home: Path) -> None:
    alerts = [
        make_alert(1),
        load_json(GOLDEN / "virustotal" / "v2-found-malicious" / "alert.json"),
        load_json(GOLDEN / "maltiverse" / "ip-hostname-url" / "alert.json"),
    ]
    alerts_file(home).write_text("".join(json.dumps(alert) + "\n" for alert in alerts))


def dead_letters_by_key(home: Path) -> dict[str, int]:
    db = state_db(home)
    if not db.exists():
        return {}
    try:
        with sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True) as connection:
            rows = connection.execute(
                "SELECT integration_key, COUNT(*) FROM dead_letters GROUP BY integration_key"
            ).fetchall()
    except sqlite3.OperationalError:  # the daemon is still creating it
        return {}
    return {key: count for key, count in rows}


def database_text(home: Path) -> str:
    """Every row of every table, and every byte of the files, as text."""
    db = state_db(home)
    with sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True) as connection:
        rows = "\n".join(connection.iterdump())
    raw = b"".join(path.read_bytes() for path in db.parent.glob("state.db*"))
    return rows + raw.decode("utf-8", "replace")


def leaks(where: str, text: str, secrets: Iterable[str] = SECRETS) -> list[str]:
    return [
        f"{where}: {secret!r} as {form!r}"
        for secret in secrets
        for form in encodings(secret)
        if form in text
    ]


async def test_no_secret_reaches_any_output_in_any_encoding(
    home: Path, echo: EchoService, analysisd: DatagramReceiver, fault_report: FaultReport
) -> None:
    port = free_port()
    configure(home, echo.url, port)
    write_alerts(home)
    daemon = Daemon(home, ["--from-start"])
    await daemon.start()
    outputs: dict[str, str] = {}
    try:
        await until(
            lambda: (
                {"slack#0", "pagerduty#2", "custom-leaky#5", "maltiverse#4"}
                <= set(dead_letters_by_key(home))
                and "shuffle#1" in dead_letters_by_key(home)
            ),
            60,
            "the dead letters of every integration",
            daemon,
        )
        async with aiohttp.ClientSession() as session:
            for page in ("metrics", "health"):
                async with session.get(f"http://127.0.0.1:{port}/{page}") as answer:
                    outputs[f"/{page}"] = await answer.text()
    finally:
        assert await daemon.stop() == 0, daemon.log()
    assert echo.requests >= 5
    outputs["log"] = daemon.log()
    for args in (["list"], ["list", "--json"]):
        status, out, err = await cli(home, "dead-letter", *args)
        assert status == 0, err
        outputs[f"dead-letter {' '.join(args)}"] = out + err
    ids = [json.loads(line)["id"] for line in outputs["dead-letter list --json"].splitlines()]
    shown = []
    for letter_id in ids:
        status, out, err = await cli(home, "dead-letter", "show", str(letter_id))
        assert status == 0, err
        shown.append(out + err)
    outputs["dead-letter show"] = "".join(shown)
    outputs["state database"] = database_text(home)
    leftovers = [
        p for p in state_db(home).parent.rglob("*") if p.is_file() and "state.db" not in p.name
    ]
    outputs["state directory"] = "".join(p.read_text(errors="replace") for p in leftovers)
    outputs["analysisd events"] = b"".join(analysisd.drain()).decode(errors="replace")

    # The echoes reached the messages, so the scan means something ...
    assert "HTTP 400" in outputs["dead-letter show"]
    assert "got" in outputs["dead-letter show"]  # the script's output
    # ... and nothing of any secret, in any encoding, anywhere.
    found = [leak for where, text in outputs.items() for leak in leaks(where, text)]
    assert found == []
    fault_report(
        "leak scan: 10 unique secrets in 6 integrations, receivers echoing "
        "path, query, headers and body (raw, percent-encoded, JSON-escaped)",
        "none found in log, dead-letter list/show, /metrics, /health, state database, "
        "state directory or analysisd events",
        section=SECTION,
    )


async def outputs_of_a_run_given_up(home: Path) -> dict[str, str]:
    """What a `run --once` whose two alerts the echo refused (400) left to
    read: its log, the state database, and the commands that show them."""
    daemon = await run_once(home, "--from-start", status=4)
    outputs = {"log": daemon.log(), "state database": database_text(home)}
    for args in (["dead-letter", "list", "--json"], ["dead-letter", "show", "1"], ["status"]):
        status, out, err = await cli(home, *args)
        assert status in (0, 1), err  # status: 1 = the daemon is not running
        outputs[" ".join(args)] = out + err
    return outputs


def leaks_in(outputs: dict[str, str], secrets: Iterable[str]) -> list[str]:
    return [found for where, text in outputs.items() for found in leaks(where, text, secrets)]


# A hook URL with user info: the HTTP client sends it as "Authorization: Basic
# <base64 of user:password>", so an echoed header carries the password in a
# form that is none of the password's own encodings.
BASIC_USER = "basicUserKK11"
BASIC_PASSWORD = "basicPass LL22@x"


async def test_the_basic_credentials_of_a_hook_url_are_never_echoed(
    home: Path, echo: EchoService
) -> None:
    user_info = f"{BASIC_USER}:{quote(BASIC_PASSWORD, safe='')}"
    hook = echo.url.replace("http://", f"http://{user_info}@") + "/services/TBAS1/BBAS2/basTokMM33"
    (home / "etc" / "ossec.conf").write_text(
        f"<ossec_config>\n{block('slack', hook_url=hook)}\n</ossec_config>\n"
    )
    append_alerts(alerts_file(home), range(2))
    outputs = await outputs_of_a_run_given_up(home)
    assert "Authorization" in outputs["dead-letter show 1"]  # the echo got that far
    credentials = f"{BASIC_USER}:{BASIC_PASSWORD}".encode()
    secrets = (BASIC_PASSWORD, base64.b64encode(credentials).decode())
    assert leaks_in(outputs, secrets) == []


# Credentials a generic webhook sends in headers of its own (<options>
# "headers"): services that take an API key in X-API-Key and the like.
HEADER_SECRETS = {
    "X-API-Key": "hdrKeyNN44secret",
    "X-Gitlab-Token": "gitlabTokOO55",
    "Proxy-Authorization": "Basic cHJveHlQUDY2Og==",
}


async def test_credentials_in_custom_headers_are_never_echoed(
    home: Path, echo: EchoService
) -> None:
    options = json.dumps({"headers": {**HEADER_SECRETS, "X-Source": "wazuhSourceQQ77"}})
    (home / "etc" / "ossec.conf").write_text(
        "<ossec_config>\n<integration><name>webhook</name>"
        f"<hook_url>{echo.url}/incoming</hook_url><alert_format>json</alert_format>"
        f"<options>{options}</options></integration>\n</ossec_config>\n"
    )
    append_alerts(alerts_file(home), range(2))
    outputs = await outputs_of_a_run_given_up(home)
    # The echo got that far, and a header that is no credential stays readable.
    assert "wazuhSourceQQ77" in outputs["dead-letter show 1"]
    assert leaks_in(outputs, (*HEADER_SECRETS.values(), "cHJveHlQUDY2Og==")) == []
