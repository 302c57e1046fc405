"""Checks that a webhook came from your QR Bridge (the Standard Webhooks scheme), with Python's
standard library. `headers` maps lower-case header names to values, `body` is the raw body
text exactly as received: parse the JSON only after this returns True."""

import base64
import hashlib
import hmac
import json
import sys
import time


def verify_webhook(secret, headers, body, tolerance_seconds=300):
    if isinstance(body, bytes):  # Flask's request.get_data(), Django's request.body
        body = body.decode("utf-8", errors="replace")
    msg_id = headers.get("webhook-id")
    timestamp = headers.get("webhook-timestamp")
    signatures = headers.get("webhook-signature")
    if not (msg_id and timestamp and signatures):
        return False
    try:
        # An old (or future) timestamp is a replay: refuse it.
        if abs(time.time() - int(timestamp)) > tolerance_seconds:
            return False
    except ValueError:
        return False
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{msg_id}.{timestamp}.{body}".encode()
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest())
    # Compared as bytes: compare_digest refuses non-ASCII strings with an exception.
    return any(
        version == "v1" and hmac.compare_digest(value.encode(), expected)
        for version, _, value in (s.partition(",") for s in signatures.split(" "))
    )


# `python3 verify.py < {"secret":…,"headers":{…},"body":"…"}`: exits 0 when it verifies (the
# tests run the README's snippet this way).
if __name__ == "__main__":
    given = json.load(sys.stdin)
    sys.exit(0 if verify_webhook(given["secret"], given["headers"], given["body"]) else 1)
