"""`dogbreed up`: the whole stack on one machine, with one command.

Migrates the database, finds or starts a broker, then runs and supervises gunicorn (web), one
Celery worker per GPU (or one CPU worker) and Flower. Ctrl-C stops every child.
"""
from __future__ import annotations

import argparse
import logging
import os
import secrets
import socket
import sys

from shared.settings import Settings

log = logging.getLogger("dogbreed.up")


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, help="web port (DOGBREED_PORT, default 8000)")
    parser.add_argument("--flower-port", type=int, help="Flower port (DOGBREED_FLOWER_PORT, default 5555)")
    parser.add_argument("--gpus", default="all", help="'all' (default), 'cpu', or indices like 0,1")
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--no-flower", action="store_true", help="do not start Flower")


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
            return True
        except OSError:
            return False


def _local_login(settings: Settings) -> list[str]:
    """A local admin for a trial run: a fresh password each start, one API key kept in var/."""
    from cli.private_files import write_private
    from shared import accounts
    from shared.db import make_engine, make_sessionmaker, session_scope

    engine = make_engine(settings.database_url)
    key_file = settings.var_dir / "local-api-key"
    password = secrets.token_urlsafe(9)
    with session_scope(make_sessionmaker(engine)) as session:
        user = accounts.find_user(session, "local") or accounts.create_user(session, "local", is_admin=True)
        accounts.set_password(session, user, password)
        key = key_file.read_text().strip() if key_file.exists() else ""
        if not key or accounts.user_for_key(session, key) is None:
            key = accounts.create_key(session, user)
            write_private(key_file, key + "\n")
    engine.dispose()
    return [f"  log in as:  local / {password}   (a new password each start)",
            f"  API key:    {key}   (kept in {key_file})"]


def run(args: argparse.Namespace) -> int:
    from cli import broker as brokers
    from cli.db import upgrade
    from cli.private_files import private_dir, secret_key
    from cli.services import flower_service, fresh_metrics_dir, web_service, worker_services
    from cli.supervise import Supervisor
    from shared.db import redact

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = Settings.from_env()
    settings = settings.with_(
        port=args.port or settings.port,
        flower_port=args.flower_port or settings.flower_port,
        var_dir=settings.var_dir.resolve(),
        storage_dir=settings.storage_dir.resolve(),
        model_dir=settings.model_dir.resolve(),
        feature_cache_dir=settings.feature_cache_dir.resolve(),
    )
    ports = [(settings.port, "--port")] + ([] if args.no_flower else [(settings.flower_port, "--flower-port")])
    for port, what in ports:
        if not _port_free(settings.host, port):
            print(f"dogbreed up: port {port} on {settings.host} is taken; choose another with {what}", file=sys.stderr)
            return 2
    private_dir(settings.var_dir)
    for folder in (settings.storage_dir, settings.model_dir):
        folder.mkdir(parents=True, exist_ok=True)

    broker = brokers.resolve(settings.broker_url)
    try:
        settings = settings.with_(broker_url=broker.url, secret_key=settings.secret_key or secret_key(settings.var_dir),
                                  webhook_secret=settings.webhook_secret or secret_key(settings.var_dir, "webhook-secret", webhook=True))
        upgrade(settings.database_url)
        login = _local_login(settings) if settings.auth_required else ["  auth is off (DOGBREED_AUTH=0): everyone sees every job"]
        os.environ.update(settings.to_env())
        fresh_metrics_dir(settings)
        services = [web_service(settings, args.web_workers), *worker_services(settings, args.gpus)]
        if not args.no_flower:
            services.append(flower_service(settings))
        flower_url = "off" if args.no_flower else f"http://{settings.host}:{settings.flower_port}/"
        print("\n".join([
            "dogbreed is starting:",
            f"  web:        http://{settings.host}:{settings.port}/",
            f"  flower:     {flower_url}",
            f"  broker:     {broker.describe()}",
            f"  database:   {redact(settings.database_url)}",
            f"  images:     {settings.storage_url if settings.uses_s3 else settings.storage_dir}",
            f"  workers:    {', '.join(s.name for s in services if s.name.startswith('worker'))} "
            f"(backbone {settings.backbone}, weights {settings.backbone_weights})",
            *login,
            "Press Ctrl-C to stop everything.",
        ]), flush=True)
        return Supervisor(services).run()
    finally:
        broker.stop()

