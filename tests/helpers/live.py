"""The Flask app over real HTTP: in a thread (LiveServer), or as `dogbreed web` under gunicorn (GunicornWeb)."""
from __future__ import annotations

import os
import subprocess
import sys
import threading

import requests
from werkzeug.serving import make_server

from cli.broker import free_port
from tests.helpers.openapi import checker
from tests.helpers.services import ROOT, settings_env, wait_for


class LiveServer:
    def __init__(self, app) -> None:
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> "LiveServer":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class GunicornWeb:
    """`dogbreed web` on a free loopback port; every answer checked against the OpenAPI document."""

    def __init__(self, settings, tmp_path, workers: int = 1) -> None:
        port = free_port()
        env = {**os.environ, **settings_env(settings.with_(port=port, var_dir=tmp_path / "var")), "PYTHONPATH": str(ROOT)}
        self.log_path = tmp_path / "web.log"
        self.proc = subprocess.Popen([sys.executable, "-m", "cli.main", "web", "--workers", str(workers)], cwd=ROOT,
                                     env=env, stdout=open(self.log_path, "wb"), stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.url = f"http://127.0.0.1:{port}"
        wait_for(self._up, 60, 0.3, "gunicorn to answer")

    def _up(self) -> bool:
        try:
            return requests.get(f"{self.url}/healthz", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def session(self) -> requests.Session:
        session = requests.Session()
        session.hooks["response"].append(checker().requests_hook)
        return session

    def stop(self) -> None:
        os.killpg(self.proc.pid, 15)
        self.proc.wait(timeout=30)
