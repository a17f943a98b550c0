"""Verifies every delivery in webhook-receiver's log with PyPI's `standardwebhooks`, the
Standard Webhooks reference library for Python (pinned in xtask/src/setup.rs, installed into
the venv target/venv by `cargo xtask setup`).

    WEBHOOK_SECRET=whsec_... target/venv/bin/python3 tests/outbound/verify.py LOG_FILE

Prints one JSON line: {"verified": N, "failed": [ids], "late": [ids], "errors": {id: why}}.
"late" names failed lines received more than 5 minutes ago: the library measures the timestamp
against the clock now, so verify promptly after receipt. Exits 1 when a line fails or the file
has none, 2 on wrong usage.
"""

import json
import os
import sys
import time

from standardwebhooks import Webhook

TOLERANCE_MS = 5 * 60 * 1000
HEADERS = (
    ("webhook-id", "id"),
    ("webhook-timestamp", "timestamp"),
    ("webhook-signature", "signature"),
)


def main() -> int:
    secret = os.environ.get("WEBHOOK_SECRET")
    if len(sys.argv) != 2 or not secret:
        print("usage: WEBHOOK_SECRET=whsec_... python3 verify.py LOG_FILE", file=sys.stderr)
        return 2
    log_file = sys.argv[1]
    try:
        webhook = Webhook(secret)
    except Exception as e:  # the library raises several kinds for a bad secret
        print(f"verify.py: unusable WEBHOOK_SECRET: {e}", file=sys.stderr)
        return 2
    try:
        with open(log_file, encoding="utf-8") as f:
            lines = [line for line in f.read().split("\n") if line.strip()]
    except OSError as e:
        print(f"verify.py: cannot read {log_file}: {e}", file=sys.stderr)
        lines = []

    summary = {"verified": 0, "failed": [], "late": [], "errors": {}}

    def fail(name: str, why: str) -> None:
        summary["failed"].append(name)
        summary["errors"][name] = why
        print(f"verify.py: {name}: {why}", file=sys.stderr)

    for index, line in enumerate(lines):
        name = f"line {index + 1}"
        try:
            entry = json.loads(line)
        except ValueError as e:
            fail(name, f"not JSON: {e}")
            continue
        if isinstance(entry.get("id"), str):
            name = entry["id"]
        headers = {h: entry[f] for h, f in HEADERS if isinstance(entry.get(f), str)}
        try:
            webhook.verify(str(entry.get("body") or ""), headers, json_parse=False)
            summary["verified"] += 1
        except Exception as e:  # WebhookVerificationError, or ValueError on a malformed header
            why = str(e) or type(e).__name__
            received = entry.get("received_at")
            age = time.time() * 1000 - received if isinstance(received, (int, float)) else 0
            if age > TOLERANCE_MS:
                summary["late"].append(name)
                why += (
                    f" (received {round(age / 1000)} s ago, beyond the 5-minute tolerance"
                    " the library measures against now: verify promptly after receipt)"
                )
            fail(name, why)

    if not lines:
        print(f"verify.py: no delivery in {log_file}", file=sys.stderr)
    print(json.dumps(summary))
    return 0 if lines and not summary["failed"] else 1


if __name__ == "__main__":
    sys.exit(main())
