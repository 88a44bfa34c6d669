"""A real local HTTP server with scripted answers per path, for outbound fetches (webhooks, image_url).

Each route is a function of the handler: it writes whatever it likes (drips, floods, redirects).
The server records each request's method, path and Host header.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

Route = Callable[[BaseHTTPRequestHandler], None]


def answer(status: int, body: bytes = b"", content_type: str = "application/octet-stream",
           headers: dict[str, str] | None = None) -> Route:
    def route(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(body)
    return route


def redirect(location: str, status: int = 302) -> Route:
    return answer(status, headers={"Location": location})


def drip(body: bytes, every_s: float) -> Route:
    """A 200 whose body comes one byte at a time: each read is quick, the whole answer is slow."""
    def route(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.flush()
        for i in range(len(body)):
            try:
                handler.wfile.write(body[i:i + 1])
                handler.wfile.flush()
            except OSError:
                return  # the client hung up: what the test wants
            time.sleep(every_s)
    return route


def flood(total_bytes: int, say_length: bool) -> Route:
    """A 200 of `total_bytes` zeros, with or without a Content-Length (then until the connection closes)."""
    def route(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        if say_length:
            handler.send_header("Content-Length", str(total_bytes))
        handler.send_header("Connection", "close")
        handler.end_headers()
        block = b"\0" * 65536
        sent = 0
        try:
            while sent < total_bytes:
                handler.wfile.write(block)
                sent += len(block)
        except OSError:
            pass
        handler.close_connection = True
    return route


@dataclass
class Seen:
    method: str
    path: str
    host: str


@dataclass
class Origin:
    routes: dict[str, Route] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)

    def start(self) -> str:
        origin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                origin.seen.append(Seen(self.command, self.path, self.headers.get("Host", "")))
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                route = origin.routes.get(self.path.split("?", 1)[0], answer(404, b"no such path"))
                route(self)

            do_GET = do_POST = _serve  # noqa: N815 (http.server's names)

            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that hangs up mid-answer is what these tests make happen

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self.url("")

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
