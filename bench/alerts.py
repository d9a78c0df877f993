"""Real-shaped Wazuh alerts, about 1 KB each, as analysisd writes them to alerts.json.

The mix follows what a manager sees: sshd and sudo logs, web access logs,
file integrity (syscheck), Windows event channel, rootcheck and the manager's
own messages, from a hundred agents. Nothing here is random at run time
beyond a seeded generator, so every run reads the same bytes.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

Alert = dict[str, Any]

AGENTS = [
    {"id": f"{n:03d}", "name": f"{role}{n:02d}", "ip": f"10.{n // 50}.{n % 50}.{10 + n % 200}"}
    for n, role in zip(range(1, 101), ["web", "db", "app", "dc", "mail"] * 20, strict=True)
]
MANAGER = {"name": "wazuh-manager"}
CLUSTER = {"name": "wazuh", "node": "master"}
_COMPLIANCE = {
    "pci_dss": ["10.2.4", "10.2.5"],
    "gdpr": ["IV_35.7.d", "IV_32.2"],
    "hipaa": ["164.312.b"],
    "nist_800_53": ["AU.14", "AC.7"],
    "tsc": ["CC6.1", "CC6.8", "CC7.2", "CC7.3"],
}


def _rule(rule_id: str, level: int, description: str, groups: list[str], n: int) -> Alert:
    return {
        "level": level,
        "description": description,
        "id": rule_id,
        "firedtimes": 1 + n % 97,
        "mail": level >= 12,
        "groups": groups,
        **_COMPLIANCE,
    }


def _sshd(rng: random.Random, n: int, agent: Alert, ts: str) -> Alert:
    src = f"203.0.{rng.randrange(256)}.{rng.randrange(1, 255)}"
    user = rng.choice(["root", "admin", "ubuntu", "oracle", "test", "git"])
    rule_id, level, description, groups = rng.choice(
        [
            (
                "5710",
                5,
                "sshd: Attempt to login using a non-existent user",
                ["syslog", "sshd", "authentication_failed", "invalid_login"],
            ),
            (
                "5716",
                5,
                "sshd: authentication failed.",
                ["syslog", "sshd", "authentication_failed"],
            ),
            (
                "5712",
                10,
                "sshd: brute force trying to get access to the system. Non existent user.",
                ["syslog", "sshd", "authentication_failures"],
            ),
            (
                "5715",
                3,
                "sshd: authentication success.",
                ["syslog", "sshd", "authentication_success"],
            ),
        ]
    )
    rule = _rule(rule_id, level, description, groups, n)
    rule["mitre"] = {
        "id": ["T1110.001"],
        "tactic": ["Credential Access"],
        "technique": ["Password Guessing"],
    }
    port = rng.randrange(1024, 65535)
    return {
        "rule": rule,
        "agent": agent,
        "manager": MANAGER,
        "cluster": CLUSTER,
        "full_log": f"{ts[5:10]} {ts[11:19]} {agent['name']} sshd[{1000 + n % 30000}]: "
        f"Failed password for invalid user {user} from {src} port {port} ssh2",
        "predecoder": {"program_name": "sshd", "timestamp": ts[:19], "hostname": agent["name"]},
        "decoder": {"parent": "sshd", "name": "sshd"},
        "data": {"srcip": src, "srcport": str(port), "srcuser": user},
        "location": "/var/log/auth.log",
    }


def _web(rng: random.Random, n: int, agent: Alert, ts: str) -> Alert:
    src = f"198.51.{rng.randrange(256)}.{rng.randrange(1, 255)}"
    path = rng.choice(
        [
            "/wp-login.php",
            "/admin/config.php",
            "/.env",
            "/cgi-bin/luci",
            "/index.php?id=1%27%20OR%20%271%27=%271",
            "/phpmyadmin/",
        ]
    )
    status = rng.choice(["400", "403", "404", "500"])
    rule_id, level, description = rng.choice(
        [
            ("31101", 5, "Web server 400 error code."),
            ("31151", 10, "Multiple web server 400 error codes from same source ip."),
            ("31103", 7, "SQL injection attempt."),
            ("31120", 5, "Web server 500 error code (Internal Error)."),
        ]
    )
    rule = _rule(rule_id, level, description, ["web", "accesslog", "attack"], n)
    return {
        "rule": rule,
        "agent": agent,
        "manager": MANAGER,
        "cluster": CLUSTER,
        "full_log": f'{src} - - [{ts[:19]}] "GET {path} HTTP/1.1" {status} 162 "-" '
        '"Mozilla/5.0 (X11; Linux x86_64; rv:109.0) Gecko/20100101 Firefox/118.0"',
        "decoder": {"name": "web-accesslog"},
        "data": {"protocol": "GET", "srcip": src, "id": status, "url": path},
        "location": "/var/log/nginx/access.log",
    }


def _syscheck(rng: random.Random, n: int, agent: Alert, ts: str) -> Alert:
    path = rng.choice(
        [
            "/etc/passwd",
            "/etc/shadow",
            "/usr/bin/sudo",
            "/etc/ssh/sshd_config",
            "/var/www/html/index.php",
            "/etc/crontab",
        ]
    )
    md5 = f"{rng.getrandbits(128):032x}"
    sha1 = f"{rng.getrandbits(160):040x}"
    rule_id, level, description, event = rng.choice(
        [
            ("550", 7, "Integrity checksum changed.", "modified"),
            ("554", 5, "File added to the system.", "added"),
            ("553", 7, "File deleted.", "deleted"),
        ]
    )
    rule = _rule(
        rule_id,
        level,
        description,
        ["ossec", "syscheck", f"syscheck_entry_{event}", "syscheck_file"],
        n,
    )
    return {
        "rule": rule,
        "agent": agent,
        "manager": MANAGER,
        "cluster": CLUSTER,
        "full_log": f"File '{path}' {event}\nMode: realtime\n",
        "syscheck": {
            "path": path,
            "mode": "realtime",
            "size_after": str(rng.randrange(100, 90000)),
            "perm_after": "rw-r--r--",
            "uid_after": "0",
            "gid_after": "0",
            "md5_after": md5,
            "sha1_after": sha1,
            "sha256_after": f"{rng.getrandbits(256):064x}",
            "uname_after": "root",
            "gname_after": "root",
            "mtime_after": ts[:19],
            "inode_after": rng.randrange(1, 9_999_999),
            "event": event,
        },
        "decoder": {"name": "syscheck_integrity_changed"},
        "location": "syscheck",
    }


def _windows(rng: random.Random, n: int, agent: Alert, ts: str) -> Alert:
    user = rng.choice(["Administrator", "svc_backup", "jdoe", "asmith"])
    rule_id, level, description, event_id = rng.choice(
        [
            ("60106", 3, "Windows Logon Success", "4624"),
            ("60122", 5, "Logon Failure - Unknown user or bad password", "4625"),
            ("60204", 10, "Multiple Windows Logon Failures", "4625"),
        ]
    )
    rule = _rule(
        rule_id, level, description, ["windows", "windows_security", "authentication_failed"], n
    )
    return {
        "rule": rule,
        "agent": agent,
        "manager": MANAGER,
        "cluster": CLUSTER,
        "decoder": {"name": "windows_eventchannel"},
        "data": {
            "win": {
                "system": {
                    "providerName": "Microsoft-Windows-Security-Auditing",
                    "eventID": event_id,
                    "level": "0",
                    "task": "12544",
                    "keywords": "0x8020000000000000",
                    "systemTime": ts,
                    "eventRecordID": str(100000 + n),
                    "channel": "Security",
                    "computer": f"{agent['name']}.corp.example.com",
                    "severityValue": "AUDIT_SUCCESS",
                },
                "eventdata": {
                    "targetUserName": user,
                    "targetDomainName": "CORP",
                    "logonType": rng.choice(["2", "3", "10"]),
                    "ipAddress": f"10.1.{rng.randrange(256)}.{rng.randrange(1, 255)}",
                    "workstationName": f"WS{rng.randrange(1000):04d}",
                    "authenticationPackageName": "NTLM",
                },
            }
        },
        "location": "EventChannel",
    }


def _rootcheck(rng: random.Random, n: int, agent: Alert, ts: str) -> Alert:
    title = rng.choice(["Trojaned version of file detected.", "Host-based anomaly detection"])
    rule = _rule(
        "510", 7, "Host-based anomaly detection event (rootcheck).", ["ossec", "rootcheck"], n
    )
    return {
        "rule": rule,
        "agent": agent,
        "manager": MANAGER,
        "cluster": CLUSTER,
        "full_log": f"{title} Signature used: 'bash|^/bin/sh|file\\.h|proc\\.h|/dev/[^n]' "
        f"(Generic) on /usr/bin/{rng.choice(['chfn', 'chsh', 'passwd'])}.",
        "decoder": {"name": "rootcheck"},
        "data": {"title": title, "file": "/usr/bin/chfn"},
        "location": "rootcheck",
    }


def _sudo(rng: random.Random, n: int, agent: Alert, ts: str) -> Alert:
    user = rng.choice(["deploy", "jdoe", "backup"])
    command = rng.choice(
        ["/usr/bin/systemctl restart nginx", "/bin/cat /etc/shadow", "/usr/bin/apt-get upgrade -y"]
    )
    rule = _rule("5402", 3, "Successful sudo to ROOT executed.", ["syslog", "sudo"], n)
    return {
        "rule": rule,
        "agent": agent,
        "manager": MANAGER,
        "cluster": CLUSTER,
        "full_log": f"{ts[5:10]} {ts[11:19]} {agent['name']} sudo: {user} : TTY=pts/0 ; "
        f"PWD=/home/{user} ; USER=root ; COMMAND={command}",
        "predecoder": {"program_name": "sudo", "timestamp": ts[:19], "hostname": agent["name"]},
        "decoder": {"parent": "sudo", "name": "sudo", "ftscomment": "First time user executed"},
        "data": {
            "srcuser": user,
            "dstuser": "root",
            "tty": "pts/0",
            "pwd": f"/home/{user}",
            "command": command,
        },
        "location": "/var/log/auth.log",
    }


def _manager(rng: random.Random, n: int, agent: Alert, ts: str) -> Alert:
    rule = _rule("502", 3, "Ossec server started.", ["ossec"], n)
    return {
        "rule": rule,
        "agent": {"id": "000", "name": "wazuh-manager"},
        "manager": MANAGER,
        "cluster": CLUSTER,
        "full_log": "ossec: Ossec started.",
        "decoder": {"name": "ossec"},
        "location": "wazuh-monitord",
    }


# Weights: roughly what a busy manager's alerts.json holds.
_KINDS: list[tuple[Callable[[random.Random, int, Alert, str], Alert], int]] = [
    (_sshd, 30),
    (_web, 25),
    (_windows, 20),
    (_syscheck, 10),
    (_sudo, 10),
    (_rootcheck, 4),
    (_manager, 1),
]
_MAKERS = [maker for maker, weight in _KINDS for _ in range(weight)]
EPOCH = 1764262800  # 2025-11-27T17:00:00Z


def alerts(count: int, seed: int = 5) -> Iterator[Alert]:
    """``count`` alerts, in the key order analysisd writes (timestamp first).

    Five hundred alerts a second of alert time; ids are ``<epoch>.<offset>``
    as Wazuh makes them, the offset approximated at 1 KB a line.
    """
    rng = random.Random(seed)
    for n in range(count):
        seconds = EPOCH + n // 500
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{n % 1000:03d}+0000"
        body = rng.choice(_MAKERS)(rng, n, AGENTS[n % len(AGENTS)], ts)
        yield {
            "timestamp": ts,
            "rule": body.pop("rule"),
            "agent": body.pop("agent"),
            "manager": body.pop("manager"),
            "id": f"{seconds}.{n * 1024}",
            **body,
        }


def write_alerts(path: Path, count: int, seed: int = 5) -> int:
    """Write ``count`` alert lines to ``path``; returns the file's size in bytes."""
    with path.open("wb", buffering=1 << 20) as handle:
        for alert in alerts(count, seed):
            handle.write(orjson.dumps(alert) + b"\n")
    return path.stat().st_size
