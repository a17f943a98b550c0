"""Schemathesis auth provider for `cargo xtask test contract`: signs the bodies it posts to
`/webhooks/meta` as Meta does (`X-Hub-Signature-256: sha256=` and the hex HMAC-SHA256 of
the raw body with the app secret), so that the webhook route is checked past its signature
check too; Schemathesis's own probes of that credential (none, or a wrong one) stay as they
are. The secret is the test proxy's, from `WABA_CONTRACT_APP_SECRET`.
"""

import hashlib
import hmac
import json
import os

import schemathesis

HEADER = "X-Hub-Signature-256"


def sent_bytes(body):
    """The bytes the requests transport sends for `body` (`json=`: `json.dumps`, UTF-8)."""
    if isinstance(body, bytes):
        return body
    if type(body).__name__ == "NotSet":
        return b""
    if body is None:
        return b"null"
    return json.dumps(body, allow_nan=False).encode("utf-8")


@schemathesis.auth(refresh_interval=None).apply_to(path="/webhooks/meta", method="POST")
class MetaSignature:
    def get(self, case, context):
        return os.environ.get("WABA_CONTRACT_APP_SECRET", "").encode()

    def set(self, case, data, context):
        try:
            raw = sent_bytes(case.body)
        except (TypeError, ValueError):
            return
        signature = hmac.new(data, raw, hashlib.sha256).hexdigest()
        case.headers = {**(case.headers or {}), HEADER: f"sha256={signature}"}
