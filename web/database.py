"""One database session per request, removed at teardown."""
from __future__ import annotations

from flask import Flask, current_app, g
from sqlalchemy.orm import Session

from shared.db import make_engine, make_sessionmaker


def init_app(app: Flask) -> None:
    engine = make_engine(app.config["SETTINGS"].database_url)
    app.extensions["db_engine"] = engine
    app.extensions["db_sessions"] = make_sessionmaker(engine)
    app.teardown_appcontext(_close)


def db() -> Session:
    if "db" not in g:
        g.db = current_app.extensions["db_sessions"]()
    return g.db


def _close(exc: BaseException | None) -> None:
    session = g.pop("db", None)
    if session is not None:
        if exc is not None:
            session.rollback()
        session.close()
