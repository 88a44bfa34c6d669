"""Headers and cookies for a deployment behind a TLS proxy: Secure cookies, the proxy's
X-Forwarded-* trusted for a set number of hops, HSTS, and no page shown inside another site's frame."""
from __future__ import annotations

from flask import Flask, Response, request
from werkzeug.middleware.proxy_fix import ProxyFix


def init_app(app: Flask) -> None:
    settings = app.config["SETTINGS"]
    app.config["SESSION_COOKIE_SECURE"] = settings.secure_cookies
    if settings.proxy_hops > 0:
        hops = settings.proxy_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops)  # type: ignore[method-assign]

    @app.after_request
    def _headers(response: Response) -> Response:
        csp = response.headers.get("Content-Security-Policy")
        response.headers["Content-Security-Policy"] = f"{csp}; frame-ancestors 'none'" if csp else "frame-ancestors 'none'"
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        if settings.hsts_seconds > 0 and request.is_secure:
            response.headers["Strict-Transport-Security"] = f"max-age={settings.hsts_seconds}; includeSubDomains"
        return response
