"""Headers and cookies for a deployment behind a TLS proxy: Secure cookies, the proxy's
X-Forwarded-* trusted for a set number of hops, and only from the proxies' own addresses
(DOGBREED_TRUSTED_PROXIES: a client that reaches gunicorn directly cannot claim to be loopback), HSTS,
and no page shown inside another site's frame."""
from __future__ import annotations

import ipaddress
from typing import Any, Callable, Iterable

from flask import Flask, Response, request
from werkzeug.middleware.proxy_fix import ProxyFix


def init_app(app: Flask) -> None:
    settings = app.config["SETTINGS"]
    app.config["SESSION_COOKIE_SECURE"] = settings.secure_cookies
    if settings.proxy_hops > 0:
        hops = settings.proxy_hops
        fixed = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops)
        app.wsgi_app = TrustedProxies(app.wsgi_app, fixed, settings.trusted_proxies)  # type: ignore[method-assign]

    @app.after_request
    def _headers(response: Response) -> Response:
        csp = response.headers.get("Content-Security-Policy")
        response.headers["Content-Security-Policy"] = f"{csp}; frame-ancestors 'none'" if csp else "frame-ancestors 'none'"
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        if settings.hsts_seconds > 0 and request.is_secure:
            response.headers["Strict-Transport-Security"] = f"max-age={settings.hsts_seconds}; includeSubDomains"
        return response


class TrustedProxies:
    """X-Forwarded-* applied (ProxyFix) only when the connection comes from a trusted proxy's address;
    from anyone else the headers are ignored and the peer's own address is the client's."""

    def __init__(self, plain: Callable[..., Iterable[bytes]], fixed: ProxyFix, trusted: str) -> None:
        self.plain, self.fixed = plain, fixed
        self.networks = [ipaddress.ip_network(item.strip(), strict=False) for item in trusted.split(",") if item.strip()]

    def trusts(self, address: str | None) -> bool:
        try:
            ip = ipaddress.ip_address((address or "").split("%")[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
            ip = ip.ipv4_mapped
        return any(ip in network for network in self.networks)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if self.trusts(environ.get("REMOTE_ADDR")):
            return self.fixed(environ, start_response)
        return self.plain(environ, start_response)
