"""A small webhook receiver for the compose stack: prints every alert it gets.

Standard library only (it runs in a bare python image). With WEBHOOK_SECRET set
(whsec_...), it checks the Standard Webhooks signature: ``webhook-signature`` is
``v1,<base64 HMAC-SHA256 of "id.timestamp.body">`` keyed with the base64-decoded
part of the secret after ``whsec_``. A bad signature gets 401, which burnwatch
records as a failed delivery.

    python webhook_receiver.py --port 8080
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOLERANCE_S = 5 * 60


def signature_ok(secret: str, headers, body: bytes) -> bool:
    msg_id = headers.get("webhook-id", "")
    stamp = headers.get("webhook-timestamp", "")
    given = headers.get("webhook-signature", "")
    try:
        if abs(time.time() - int(stamp)) > TOLERANCE_S:
            return False
        key = base64.b64decode(secret.removeprefix("whsec_"))
    except ValueError:
        return False
    mac = hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    expected = base64.b64encode(mac).decode()
    return any(
        hmac.compare_digest(sig.split(",", 1)[1], expected)
        for sig in given.split()
        if sig.startswith("v1,")
    )


class Handler(BaseHTTPRequestHandler):
    secret = os.environ.get("WEBHOOK_SECRET", "")

    def do_POST(self) -> None:  # noqa: N802 - the http.server API
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        if self.secret and not signature_ok(self.secret, self.headers, body):
            self.send_response(401)
            self.end_headers()
            print(f"rejected: bad signature path={self.path}", flush=True)
            return
        try:
            shown = json.dumps(json.loads(body), indent=2, sort_keys=True)
        except ValueError:
            shown = body.decode("utf-8", "replace")
        print(f"--- alert path={self.path} id={self.headers.get('webhook-id')}\n{shown}",
              flush=True)
        self.send_response(204)
        self.end_headers()

    def do_GET(self) -> None:  # noqa: N802 - a liveness answer
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok\n")

    def log_message(self, fmt: str, *args) -> None:
        pass  # the alert itself is the log


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    print(f"listening on {args.host}:{args.port}", file=sys.stderr, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
