"""Where a line of alerts.json was: enough to tell, after a restart, whether
the floods stage already counted a line that is read again.

The checkpoint is a low watermark, so a restart reads again every line after
it, some of which the throttle and the digests had already counted (their
state is saved at least as often as the checkpoint). A mark is the line's
file identity and end offset; a state remembers the last mark it counted.
"""

from __future__ import annotations

from wazuh_integrator.store import Mark

__all__ = ["Mark"]
