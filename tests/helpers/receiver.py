"""A real HTTP server that receives webhooks and checks each signature, as a user's endpoint would."""
from __future__ import annotations

import hashlib
import hmac
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

# The webhook secret of the end-to-end tests: the worker signs with it, the receiver checks it.
SECRET = "whsec-test-0123456789"


@dataclass
class Delivery:
    signature: str
    verified: bool
    job: dict[str, Any]  # the body: a job, or an album
    event: str = ""  # X-Dogbreed-Event
    standard: bool = False  # webhook-signature verified by the `standardwebhooks` package
    msg_id: str = ""  # webhook-id


@dataclass
class Receiver:
    secret: str
    answers: list[int] = field(default_factory=list)  # status per request in turn; 204 once they run out
    deliveries: list[Delivery] = field(default_factory=list)

    def start(self) -> str:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                signature = self.headers.get("X-Dogbreed-Signature", "")
                expected = "sha256=" + hmac.new(receiver.secret.encode(), body, hashlib.sha256).hexdigest()
                verified = hmac.compare_digest(signature, expected)
                try:  # as the README's receiver does (a plain secret signs with its own bytes)
                    key = receiver.secret if receiver.secret.startswith("whsec_") else receiver.secret.encode()
                    Webhook(key).verify(body, dict(self.headers.items()))
                    standard = True
                except WebhookVerificationError:
                    standard = False
                receiver.deliveries.append(Delivery(signature, verified, json.loads(body),
                                                    self.headers.get("X-Dogbreed-Event", ""), standard,
                                                    self.headers.get("webhook-id", "")))
                status = receiver.answers.pop(0) if receiver.answers else 204
                sent = receiver.deliveries[-1]
                print(f"receiver: POST {self.path} {sent.event} id={sent.job.get('id')} "
                      f"status={sent.job.get('status')} signature={signature} "
                      f"verified={verified} -> answering {status}", flush=True)
                self.send_response(status if verified else 401)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
