"""Starts a real modgate process on ephemeral ports for the SDK compatibility tests."""

import os
import subprocess
import tempfile
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
APPID = "wx0123456789abcdef"
SECRET = "0123456789abcdef0123456789abcdef"

# Loopback only: never route test traffic through an environment proxy.
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"


def start_modgate(body):
    """Starts modgate with `body` (TOML after the listen and state sections); returns the
    process and the API and admin base URLs."""
    binary = os.environ.get("MODGATE_BIN", str(ROOT / "target" / "debug" / "modgate"))
    workdir = tempfile.mkdtemp(prefix="modgate-compat-")
    config = Path(workdir) / "modgate.toml"
    config.write_text(
        f"""
[server]
listen = "127.0.0.1:0"
[state]
data_dir = "{workdir}/data"
{body}
"""
    )
    proc = subprocess.Popen(
        [binary, "serve", "--config", str(config)],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "RUST_LOG": "info"},
    )
    api = admin = None
    for line in proc.stderr:
        if "listening" in line:
            api = line.split("api=")[1].split()[0]
            admin = line.split("admin=")[1].split()[0]
            break
    assert api, "modgate did not report its address"
    # Keep draining stderr so the server never blocks on a full pipe.
    threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
    return proc, f"http://{api}", f"http://{admin}"


def serve(handler):
    """Serves `handler` (a BaseHTTPRequestHandler class) on a fresh loopback port, on a thread
    of its own; returns the server (`server_address[1]` is the port, `shutdown()` stops it)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def issue_token(api):
    """A fresh access token for the test app from the gateway at `api`."""
    return requests.get(
        f"{api}/cgi-bin/token",
        params={"grant_type": "client_credential", "appid": APPID, "secret": SECRET},
        timeout=10,
    ).json()["access_token"]


def stop_modgate(proc):
    proc.terminate()
    assert proc.wait(timeout=30) == 0


@pytest.fixture(scope="session")
def modgate():
    proc, api, _ = start_modgate(
        f"""
[admin]
listen = "127.0.0.1:0"
[[apps]]
appid = "{APPID}"
secret = "{SECRET}"
"""
    )
    yield api
    stop_modgate(proc)
