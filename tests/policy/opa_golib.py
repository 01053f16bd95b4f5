"""OPA's own evaluator, for the differential tests only: never on the production path.

PyPI's ``opa-golib-python-bindings`` 0.4.4 ships OPA v1.20.2's Go ``rego`` package as a c-shared
library (``libopabridge.so``) with a plain ctypes wrapper (``opa_bindings.OpaEngine``:
``add_policy``, ``add_data``, ``eval_document``). Its metadata asks for Python 3.14; the wrapper
runs on 3.11, so it is not installed but fetched as a wheel into ``.cache/opa-golib`` (git-ignored;
``BROKER_OPA_GOLIB_CACHE`` elsewhere), checked against the pinned SHA-256, unpacked and imported
from there. It loads policies and data, not bundles: the tests feed it the files of the bundle the
broker serves, so OPA's bundle signature check stays untested here.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

VERSION = "0.4.4"
OPA_VERSION = "v1.20.2"
WHEEL = f"opa_golib_python_bindings-{VERSION}-py3-none-manylinux_2_34_x86_64.whl"
WHEEL_SHA256 = "d411c901e14b8c7c3023e23e4a944f4cf429c1d31baf80e959e57d11efbfd24a"
_REPO = Path(__file__).resolve().parents[2]


def cache_dir() -> Path:
    return Path(os.environ.get("BROKER_OPA_GOLIB_CACHE", _REPO / ".cache" / "opa-golib"))


class Unavailable(Exception):
    """The wheel could not be fetched or loaded here (the reason is the message)."""


def _fetch(cache: Path) -> Path:
    wheel = cache / WHEEL
    if not wheel.exists():
        cache.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
            "--python-version", "3.14", "--platform", "manylinux_2_34_x86_64",
            f"opa-golib-python-bindings=={VERSION}", "-d", str(cache),
        ]  # fmt: skip
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=300)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise Unavailable(f"pip download failed: {e}") from e
        if done.returncode != 0 or not wheel.exists():
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:]
            raise Unavailable(f"pip download failed: {' '.join(tail)}")
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != WHEEL_SHA256:
        raise Unavailable(f"{wheel} has SHA-256 {digest}, not the pinned {WHEEL_SHA256}")
    return wheel


def load_module() -> Any:
    """The ``opa_bindings`` module from the cached wheel. Raises :class:`Unavailable`."""
    if sys.platform != "linux":
        raise Unavailable("the wheel is built for Linux x86-64 only")
    cache = cache_dir()
    wheel = _fetch(cache)
    unpacked = cache / f"unpacked-{VERSION}"
    if not (unpacked / "opa_bindings" / "libopabridge.so").exists():
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(unpacked)
    if str(unpacked) not in sys.path:
        sys.path.insert(0, str(unpacked))
    try:
        return importlib.import_module("opa_bindings")
    except (ImportError, OSError) as e:
        raise Unavailable(f"opa_bindings does not load: {e}") from e


class OpaEvaluator:
    """OPA's evaluator over the files of one bundle: ``data.sharing.decision`` for an input."""

    def __init__(self, module: Any, modules: dict[str, str], data: dict[str, Any]) -> None:
        self._engine = module.OpaEngine()
        self._undefined = module.OpaUndefinedError
        for path, source in sorted(modules.items()):
            self._engine.add_policy(path, source)
        self._engine.add_data(data)

    def decision(self, policy_input: dict[str, Any]) -> Any:
        """The raw value of ``data.sharing.decision``, or ``None`` when undefined."""
        try:
            return self._engine.eval_document("sharing.decision", policy_input)
        except self._undefined:
            return None

    def close(self) -> None:
        self._engine.close()
