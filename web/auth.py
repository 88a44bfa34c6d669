"""Who is asking: an API key (`Authorization: Bearer KEY`) or a login session; CSRF on forms."""
from __future__ import annotations

import hmac
import secrets
from typing import NoReturn
from urllib.parse import urlparse

from flask import Blueprint, Flask, current_app, g, redirect, render_template, request, session, url_for

from shared import accounts
from shared.tables import User
from web import ratelimit, sessions
from web.database import db
from web.errors import ApiError

bp = Blueprint("auth", __name__)
UNSAFE = ("POST", "PUT", "PATCH", "DELETE")


def auth_required() -> bool:
    return current_app.config["SETTINGS"].auth_required


def owner_scope() -> int | None:
    """Whose jobs this request may see: None means all (admins, or auth switched off)."""
    user: User | None = g.get("user")
    if not auth_required() or (user and user.is_admin):
        return None
    return user.id if user else -1


def owner_id() -> int | None:
    user: User | None = g.get("user")
    return user.id if user else None


def csrf_token() -> str:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


def _check_csrf() -> None:
    """What needs no body first: another site's request, or a session that was never given a token,
    is refused before a byte of a (possibly 640 MiB) form is read; only then is the form's token read."""
    _check_same_origin()
    expected = str(session.get("csrf", ""))
    if not expected:
        _csrf_failed()
    sent = request.headers.get("X-CSRF-Token") or request.form.get("csrf_token") or ""
    # Compared as bytes: compare_digest refuses non-ASCII str, and any text may arrive here.
    if not sent or not hmac.compare_digest(sent.encode(), expected.encode()):
        _csrf_failed()


def _csrf_failed() -> NoReturn:
    raise ApiError("csrf_failed", "The form expired or did not come from this site; reload the page and try again.", 400)


def _check_same_origin() -> None:
    """A browser says where a request comes from (Origin, Sec-Fetch-Site): another site's form or script
    is refused, before any body is read. A request that names no origin (curl, scripts) is let through:
    with accounts off this is the API's only guard, so `curl -F` keeps working on a private machine."""
    fetch_site = request.headers.get("Sec-Fetch-Site")
    origin = request.headers.get("Origin")
    cross = fetch_site is not None and fetch_site not in ("same-origin", "none")
    if origin is not None and not cross:
        cross = urlparse(origin).netloc.lower() != request.host.lower()  # "null" (a sandboxed page) too
    if cross:
        raise ApiError("csrf_failed", "This request came from another site's page, and is refused; send it from "
                                      "this site's pages or from a script (curl, the dogbreed client).", 400)


def _load_user() -> None:
    g.user, g.via_key = None, False
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        user = accounts.user_for_key(db(), header[7:].strip())
        if user is None:
            raise ApiError("invalid_api_key", "That API key is not valid (revoked or mistyped); create one with `dogbreed keys create USER`.", 401,
                           {"WWW-Authenticate": "Bearer"})
        g.user, g.via_key = user, True
    elif session.get("user_id") is not None:
        user = db().get(User, session["user_id"])
        if (user is None or user.disabled_at is not None or session.get("stamp") != accounts.session_stamp(user)
                or sessions.ended(session)):
            session.clear()  # disabled, deleted, the password changed since this login, or logged out
        else:
            g.user = user
    if request.method in UNSAFE and not g.via_key:
        if g.user is None and auth_required() and request.blueprint in ("api", "pages"):
            return  # refused by require_user (401, or the login page) before the body is read
        if request.blueprint != "api" or g.user is not None:
            _check_csrf()
        else:  # the API without a key: accounts off (else require_user answers 401)
            _check_same_origin()


# The JSON API's blueprints answer 401; pages send the browser to the login form.
API_BLUEPRINTS = ("api", "events")


def require_user() -> None:
    if not auth_required() or g.get("user") is not None:
        return
    if request.blueprint in API_BLUEPRINTS:
        raise ApiError("unauthorized", "Send `Authorization: Bearer KEY`; create a key with `dogbreed keys create USER`.", 401,
                       {"WWW-Authenticate": "Bearer"})
    raise _LoginRedirect()


class _LoginRedirect(Exception):
    pass


def _safe_next(target: str | None) -> str:
    if target and not urlparse(target).netloc and target.startswith("/") and not target.startswith("//"):
        return target
    return url_for("pages.index")


@bp.route("/login", methods=["GET", "POST"])
def login():
    error = None
    if request.method == "POST":
        name = request.form.get("name", "")[:80]
        wait_s = ratelimit.login_attempt(name)
        if wait_s:
            error = f"Too many failed logins; try again in {wait_s // 60 + 1} minute(s)."
            return render_template("login.html", error=error), 429, {"Retry-After": str(wait_s)}
        user = accounts.check_login(db(), name, request.form.get("password", ""))
        if user:
            ratelimit.login_succeeded(name)
            session.clear()
            session.permanent = True  # ends after DOGBREED_SESSION_HOURS, whatever the browser does
            session["user_id"] = user.id
            session["stamp"] = accounts.session_stamp(user)
            sessions.start(session)
            return redirect(_safe_next(request.args.get("next")))
        error = "Wrong name or password."
    return render_template("login.html", error=error), (401 if error else 200)


@bp.route("/logout", methods=["POST"])
def logout():
    sessions.end(session)  # a copy of this cookie (another tab, a thief) ends too
    session.clear()
    return redirect(url_for("auth.login"))


def init_app(app: Flask) -> None:
    sessions.init_app(app)
    app.before_request(_load_user)
    app.register_blueprint(bp)
    app.jinja_env.globals["csrf_token"] = csrf_token

    @app.errorhandler(_LoginRedirect)
    def _to_login(_: Exception):
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))

    @app.context_processor
    def _user():
        return {"current_user": g.get("user"), "auth_on": auth_required()}
