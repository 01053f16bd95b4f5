"""A jti used at one broker process is refused at another sharing the database."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest

from broker.auth.assertion import ASSERTION_TYPE
from broker.auth.client_assertion import make_client_assertion
from broker.auth.registry import Registry
from broker.container import build_services
from tests.support import free_port, make_settings, new_key, public_jwk


@contextmanager
def broker_process(env: dict[str, str], port: int) -> Iterator[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "broker", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("broker process did not start")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.slow
def test_replay_is_refused_by_a_second_process(tmp_path: Path, database_url: str) -> None:
    config = make_settings(tmp_path, database_url, port=8000)
    services = build_services(config)
    registry: Registry = services.registry
    registry.add_party("p1", "Party One", "other", None, actor="test")
    key = new_key()
    registry.add_client("c1", "p1", "c1", {"keys": [public_jwk(key)]}, ["exchange"], actor="test")
    services.close()
    env = {
        **os.environ,
        "BROKER_PUBLIC_URL": config.public_url,
        "BROKER_DATABASE_URL": database_url,
        "BROKER_KEYS_DIR": str(config.keys_dir),
        "BROKER_PSEUDONYM_KEY_FILE": str(config.pseudonym_key_file),
        "PYTHONPATH": str(Path.cwd()),
    }
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": make_client_assertion("c1", key, config.token_url),
    }
    with ExitStack() as stack:
        first = stack.enter_context(broker_process(env, free_port()))
        second = stack.enter_context(broker_process(env, free_port()))
        assert httpx.post(f"{first}/oauth2/token", data=form).status_code == 200
        replay = httpx.post(f"{second}/oauth2/token", data=form)
        assert replay.status_code == 401
        assert replay.json()["error"] == "invalid_client"
