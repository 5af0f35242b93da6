"""This project served by gunicorn (config/gunicorn.conf.py) in a subprocess, for tests
that need several worker processes."""

from __future__ import annotations

import functools
import http.client
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from tests.servers import unused_port

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = Path(sys.executable).with_name("gunicorn")
TOKEN = "token-" + secrets.token_urlsafe(12)


@functools.cache
def collected_static() -> str:
    """STATIC_ROOT with collectstatic's output, made once per test run: with DEBUG off the
    project refuses to start without it."""
    root = ROOT / "var" / f"test-static{os.environ.get('DBHEALTH_TEST_DB_SUFFIX', '')}"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        # DEBUG off: the manifest storage the served site reads is the one that collects.
        "DEBUG": "False",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "STATIC_ROOT": str(root),
    }
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
        cwd=ROOT, env=env, check=True, timeout=120,
    )  # fmt: skip
    return str(root)


class Site:
    def __init__(self, port: int, server: subprocess.Popen[bytes]) -> None:
        self.port = port
        self.server = server

    def get(self, path: str, *, timeout: float = 20, **headers: str) -> tuple[int, str]:
        """One request on a new connection, so that any worker may accept it."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request("GET", path, headers={"Authorization": f"Bearer {TOKEN}", **headers})
            response = conn.getresponse()
            return response.status, response.read().decode()
        finally:
            conn.close()


def forget_cache_prefix(prefix: str) -> None:
    """Delete every key a served site wrote under its Redis ``KEY_PREFIX``."""
    import redis

    client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    try:
        keys = list(client.scan_iter(f"{prefix}:*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def site_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "False",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "False",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'default.sqlite3'}",
        "DBHEALTH_TOKEN": TOKEN,
        "STATIC_ROOT": collected_static(),
        **extra,
    }


@contextmanager
def serve(
    env: dict[str, str],
    *,
    workers: int = 2,
    threads: int | None = 4,
    log: Path | None = None,
    stdout_too: bool = True,
) -> Iterator[Site]:
    """gunicorn with ``workers`` processes, stopped (and waited for) on exit.

    ``threads=None`` keeps config/gunicorn.conf.py's; ``log`` collects stderr (and stdout
    unless ``stdout_too`` is False)."""
    port = unused_port()
    output = open(log, "wb") if log is not None else subprocess.DEVNULL  # noqa: SIM115
    options = ["--bind", f"127.0.0.1:{port}", "--workers", str(workers)]
    if threads is not None:
        options += ["--threads", str(threads)]
    server = subprocess.Popen(
        [str(GUNICORN), "-c", "config/gunicorn.conf.py", "config.wsgi", *options],
        cwd=ROOT,
        env=env,
        stdout=output if stdout_too else subprocess.DEVNULL,
        stderr=output,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            with closing(socket.socket()) as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert server.poll() is None, "gunicorn exited at start-up"
            assert time.monotonic() < deadline, "gunicorn did not listen within 30 s"
            time.sleep(0.05)  # polling for the port, not standing in for an event
        yield Site(port, server)
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(10)
        if log is not None:
            output.close()  # type: ignore[union-attr]
