"""Media-check pushes verified by an independent implementation: wechatpy's signature check
and its safe-mode crypto (AES-256-CBC over the cryptography package) decrypt and authenticate
every push modgate sends, in JSON and XML."""

import json
import queue
import struct
import time
import zlib
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlparse

import pytest
import xmltodict
from wechatpy import WeChatClient
from wechatpy.crypto import WeChatCrypto
from wechatpy.utils import check_signature

from conftest import serve, start_modgate, stop_modgate


def make_png(width, height):
    """A real RGB PNG (a gradient), built with the standard library."""

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    rows = b"".join(
        b"\0" + bytes(v for x in range(width) for v in (x * 255 // width, y * 255 // height, 128))
        for y in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


PNG = make_png(64, 48)
TOKEN = "pushTokenForTests"
# A randomly generated key (not canonical base64 in its last character, as real keys often are).
AES_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aG"
APPS = {
    # appid: (secret, push format)
    "wx00000000000000a1": ("a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1", "json"),
    "wx00000000000000a2": ("a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2", "xml"),
}



class Origin(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(PNG)))
        self.end_headers()
        self.wfile.write(PNG)

    def log_message(self, *args):
        pass


PUSHES = queue.Queue()


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        PUSHES.put((self.path, self.headers["Content-Type"], body))
        self.send_response(200)
        self.send_header("Content-Length", "7")
        self.end_headers()
        self.wfile.write(b"success")

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def gateway():
    origin = serve(Origin)
    receiver = serve(Receiver)
    push_url = f"http://127.0.0.1:{receiver.server_address[1]}/push"
    apps = "".join(
        f"""
[[apps]]
appid = "{appid}"
secret = "{secret}"
original_id = "gh_{appid[-6:]}abcdef"
push_url = "{push_url}"
push_token = "{TOKEN}"
push_format = "{fmt}"
push_mode = "aes"
encoding_aes_key = "{AES_KEY}"
"""
        for appid, (secret, fmt) in APPS.items()
    )
    proc, api, _ = start_modgate(
        f"""
[admin]
listen = "127.0.0.1:0"
[limits]
enforce = false
[media]
allow_networks = ["127.0.0.0/8"]
{apps}
"""
    )
    yield api, f"http://127.0.0.1:{origin.server_address[1]}/image.png"
    stop_modgate(proc)
    origin.shutdown()
    receiver.shutdown()


def client_for(api, appid, secret):
    class Client(WeChatClient):
        API_BASE_URL = f"{api}/"

        def fetch_access_token(self):
            return self._fetch_access_token(
                url=f"{api}/cgi-bin/token",
                params={"grant_type": "client_credential", "appid": self.appid, "secret": self.secret},
            )

    return Client(appid, secret)


@pytest.mark.parametrize("appid", list(APPS))
def test_safe_mode_pushes_decrypt_and_verify_with_wechatpy(gateway, appid):
    api, media_url = gateway
    secret, fmt = APPS[appid]
    client = client_for(api, appid, secret)
    res = client.post(
        "wxa/media_check_async",
        data={"media_url": media_url, "media_type": 2, "version": 2, "scene": 1, "openid": "oCompatUser"},
    )
    assert res["errcode"] == 0, res
    trace_id = res["trace_id"]

    deadline = time.time() + 20
    while True:
        path, content_type, body = PUSHES.get(timeout=max(0.1, deadline - time.time()))
        query = {k: v[0] for k, v in parse_qs(urlparse(path).query).items()}
        if fmt == "json":
            assert content_type == "application/json"
            envelope = json.loads(body)
        else:
            assert content_type == "text/xml"
            envelope = xmltodict.parse(body)["xml"]
        # The plain signature over token, timestamp and nonce.
        check_signature(TOKEN, query["signature"], query["timestamp"], query["nonce"])
        assert query["encrypt_type"] == "aes"
        crypto = WeChatCrypto(TOKEN, AES_KEY, appid)
        # Checks msg_signature over the ciphertext, decrypts, and checks the appid inside.
        plain = crypto.decrypt_message(envelope, query["msg_signature"], query["timestamp"], query["nonce"])
        event = json.loads(plain) if fmt == "json" else xmltodict.parse(plain)["xml"]
        if event["trace_id"] == trace_id:
            break
    assert envelope["ToUserName"] == f"gh_{appid[-6:]}abcdef"
    assert event["Event"] == "wxa_media_check"
    assert event["MsgType"] == "event"
    assert event["appid"] == appid
    assert event["FromUserName"] == "oCompatUser"
    assert int(event["errcode"]) == 0
    assert event["result"]["suggest"] == "pass"
    assert int(event["result"]["label"]) == 100


def wxa_client(api, appid, secret, monkeypatch):
    """A stock client whose `wxa` API (which keeps a base URL of its own) points at modgate."""
    from wechatpy.client.api import WeChatWxa

    monkeypatch.setattr(WeChatWxa, "API_BASE_URL", f"{api}/")
    return client_for(api, appid, secret)


def test_check_image_security_answers_from_the_image_analysis(gateway, monkeypatch):
    from wechatpy.exceptions import WeChatClientException

    api, _ = gateway
    appid = "wx00000000000000a1"
    client = wxa_client(api, appid, APPS[appid][0], monkeypatch)
    assert client.wxa.check_image_security(("photo.png", PNG, "image/png"))["errcode"] == 0
    with pytest.raises(WeChatClientException) as refused:
        client.wxa.check_image_security(("notes.txt", b"not a picture at all", "text/plain"))
    assert refused.value.errcode == 40004


def test_check_media_async_is_v1_and_its_push_parses_as_the_sdk_event(gateway, monkeypatch):
    from wechatpy import parse_message
    from wechatpy.events import WxaMediaCheckEvent

    api, media_url = gateway
    appid = "wx00000000000000a2"  # pushes XML in safe mode
    client = wxa_client(api, appid, APPS[appid][0], monkeypatch)
    res = client.wxa.check_media_async(media_url, 2)
    assert res["errcode"] == 0, res
    trace_id = res["trace_id"]
    deadline = time.time() + 20
    while True:
        path, _, body = PUSHES.get(timeout=max(0.1, deadline - time.time()))
        query = {k: v[0] for k, v in parse_qs(urlparse(path).query).items()}
        crypto = WeChatCrypto(TOKEN, AES_KEY, appid)
        plain = crypto.decrypt_message(
            xmltodict.parse(body)["xml"], query["msg_signature"], query["timestamp"], query["nonce"]
        )
        event = parse_message(plain)
        if getattr(event, "trace_id", None) == trace_id:
            break
    assert isinstance(event, WxaMediaCheckEvent)
    assert event.is_risky == 0
    assert event.status_code == 0
    assert event.is_valid
    # A v1 push names no user: the query has no openid.
    assert "openid" not in query
