"""silenceper/wechat v2 (Go module, from the Go module proxy), unchanged: its security methods
(MsgCheckV1, MsgCheck, MediaCheckAsyncV1, MediaCheckAsync, ImageCheckV1), with plain and stable
tokens, run by `go test` in tests/compat/go against a real modgate process."""

import os
import struct
import subprocess
import zlib
from pathlib import Path

import requests

from conftest import APPID, SECRET, issue_token, start_modgate, stop_modgate

GO = Path(__file__).resolve().parent / "go"
ADMIN_TOKEN = "compat-admin-token"


def textured_png(seed, width=256, height=192):
    """A PNG with blocks and texture (enough structure for a perceptual hash)."""

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    def pixel(x, y):
        block = ((x // 32) * 7 + (y // 24) * 13 + seed * 5) % 11
        noise = (x * 7919 ^ y * 104729 ^ seed * 31) % 23
        return (block * 23 + noise) % 256, (x + seed * 40) % 256, (y * 3 + block * 17) % 256

    rows = b"".join(b"\0" + bytes(v for x in range(width) for v in pixel(x, y)) for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def test_go_sdk_security_methods(tmp_path):
    proc, api, admin = start_modgate(
        f"""
[admin]
listen = "127.0.0.1:0"
token = "{ADMIN_TOKEN}"
[[apps]]
appid = "{APPID}"
secret = "{SECRET}"
"""
    )
    try:
        (tmp_path / "clean.png").write_bytes(textured_png(1))
        (tmp_path / "banked.png").write_bytes(textured_png(2))
        banked = requests.post(
            f"{admin}/admin/banks/{APPID}",
            params={"label": 20002, "suggest": "risky"},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "image/png"},
            data=textured_png(2),
            timeout=30,
        )
        assert banked.status_code == 200 and banked.json()["count"] == 1, banked.text
        # The user of the v2 checks visited recently (a report outside the SDK, which has no
        # such call; in pass-through mode a login through the gateway does the same).
        token = issue_token(api)
        visit = requests.post(
            f"{api}/wxa/visit/report", params={"access_token": token}, json={"openid": "oGoUser"}, timeout=10
        ).json()
        assert visit["errcode"] == 0, visit
        env = {
            **os.environ,
            "MODGATE_API": api,
            "MODGATE_APPID": APPID,
            "MODGATE_SECRET": SECRET,
            "MODGATE_OPENID": "oGoUser",
            "MODGATE_IMAGES": str(tmp_path),
            "GOFLAGS": "-mod=readonly",
        }
        out = subprocess.run(
            ["go", "test", "-count=1", "-v", "./..."], cwd=GO, env=env, capture_output=True, text=True, timeout=600
        )
        assert out.returncode == 0, out.stdout + out.stderr
        assert "--- PASS: TestSecurityMethods" in out.stdout, out.stdout
    finally:
        stop_modgate(proc)
