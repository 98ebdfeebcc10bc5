#!/usr/bin/env python3
"""Verifies a Docket webhook (Standard Webhooks signature) with the standard library only.

Use `verify(secret, headers, body)` in your receiver, with the *raw* request body (bytes, as
received, before any JSON parsing). Run as a script, it reads `{"secret", "headers", "body"}` as
JSON on standard input and prints `valid` or `invalid` (Docket's tests run it that way).
"""

import base64
import hashlib
import hmac
import json
import sys
import time

TOLERANCE_SECONDS = 5 * 60


def verify(secret: str, headers: dict, body: bytes, now: float | None = None) -> bool:
    """True when `body` was signed by Docket with `secret` (`whsec_…`) less than five minutes
    ago. `headers` maps lower-case header names to values."""
    message_id = headers.get("webhook-id", "")
    timestamp = headers.get("webhook-timestamp", "")
    signatures = headers.get("webhook-signature", "")
    if not (message_id and timestamp.isdigit() and signatures):
        return False
    # A stale or future timestamp is refused, so a captured request cannot be replayed later.
    if abs((now if now is not None else time.time()) - int(timestamp)) > TOLERANCE_SECONDS:
        return False
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{message_id}.{timestamp}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    # During the day after a rotation there are two signatures, one per secret.
    for candidate in signatures.split(" "):
        version, _, signature = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(signature, expected):
            return True
    return False


if __name__ == "__main__":
    request = json.load(sys.stdin)
    headers = {name.lower(): value for name, value in request["headers"].items()}
    ok = verify(request["secret"], headers, request["body"].encode())
    print("valid" if ok else "invalid")
    sys.exit(0 if ok else 1)
