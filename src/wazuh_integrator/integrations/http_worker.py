"""An HTTP transport process: the daemon's webhook requests, sent on a second core.

Started by :mod:`.transport` as ``python -m wazuh_integrator.integrations.http_worker FD``
with one end of a socket pair as FD; the work is :mod:`.transport_worker`'s.

It ignores SIGINT and SIGTERM, first thing, before the imports that take most
of its start: a stop signals the whole process group or cgroup, while the
daemon still finishes its deliveries in flight through this process. It exits
when its socket ends.
"""

from __future__ import annotations

import signal
import sys

__all__ = ["main"]


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if len(argv) != 1 or not argv[0].isdigit():
        sys.stderr.write("usage: python -m wazuh_integrator.integrations.http_worker FD\n")
        return 2
    from wazuh_integrator.integrations.transport_worker import serve

    serve(int(argv[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
