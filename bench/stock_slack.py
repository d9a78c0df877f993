"""The stock delivery model, for comparison: what Wazuh's Integrator runs for
each alert, reduced to its cost. A new interpreter starts, imports requests,
reads the alert file named by argv[1], builds the Slack attachment and POSTs
it to argv[3]. Written for this benchmark (not Wazuh's script)."""

import json
import sys

import requests


def main() -> int:
    with open(sys.argv[1]) as handle:
        alert = json.load(handle)
    rule = alert.get("rule", {})
    level = int(rule.get("level", 0))
    attachment = {
        "color": "good" if level <= 4 else "warning" if level <= 7 else "danger",
        "pretext": "WAZUH Alert",
        "title": rule.get("description", "N/A"),
        "text": alert.get("full_log"),
        "fields": [
            {"title": "Location", "value": alert.get("location")},
            {"title": "Rule ID", "value": f"{rule.get('id')} _(Level {level})_"},
        ],
        "ts": alert.get("id"),
    }
    answer = requests.post(sys.argv[3], json={"attachments": [attachment]}, timeout=10)
    return 0 if answer.ok else 1


if __name__ == "__main__":
    sys.exit(main())
