"""An ``mlflow server`` on the driver's node, so that tasks on several nodes track through one
process instead of writing one SQLite file over a network filesystem.

The server keeps the project's own store (``tracking.tracking_uri()``, by default
``<repo>/mlflow.db``) and serves no artifacts (``--no-serve-artifacts``): tasks write artifacts
straight to the experiment's location, ``<repo>/mlartifacts/<experiment>`` on the shared
filesystem, exactly where a sequential ``dvc repro`` puts them.
"""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import FerXaiError
from ..redact import redact_uri
from ..tracking import artifact_root
from .reaper import start_guarded

log = logging.getLogger(__name__)

START_TIMEOUT_S = 180.0  # a loaded machine takes a while to import mlflow's server


class TrackingServerError(FerXaiError, RuntimeError):
    pass


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=5) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


@contextmanager
def mlflow_server(backend_uri: str, host: str, port: int, log_file: Path) -> Iterator[str]:
    """Run ``mlflow server`` on ``backend_uri`` while the block runs; yields its URL."""
    port = port or free_port(host)
    url = f"http://{host}:{port}"
    mlflow_bin = Path(sys.executable).with_name("mlflow")
    cmd = [str(mlflow_bin), "server", "--backend-store-uri", backend_uri,
           "--default-artifact-root", artifact_root().as_uri(), "--no-serve-artifacts",
           "--host", host, "--port", str(port), "--workers", "1"]
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as out:
        server = start_guarded(cmd, stdout=out, stderr=out, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _healthy(url):
            if server.proc.poll() is not None:
                raise TrackingServerError(f"mlflow server on {redact_uri(backend_uri)} exited "
                                          f"{server.proc.returncode}; see {log_file}")
            if time.monotonic() > deadline:
                raise TrackingServerError(f"mlflow server at {url} not up after {START_TIMEOUT_S:.0f} s; "
                                          f"see {log_file}")
            time.sleep(0.5)
        log.info("mlflow server at %s (store %s)", url, redact_uri(backend_uri))
        yield url
    finally:
        server.stop()
