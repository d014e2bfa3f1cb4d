"""A stand-in for the platform on loopback, for pass-through mode: it issues tokens (plain and
stable), answers logins with an openid, checks tokens, and records every other call."""

import json
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


class Platform:
    def __init__(self):
        self.tokens = {}  # token -> appid
        self.calls = []  # (method, path, query, body) of calls it has no rule for
        handler = self._handler()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def issue(self, appid):
        token = "PLATFORM-" + secrets.token_urlsafe(48)
        self.tokens[token] = appid
        return token

    def stop(self):
        self.server.shutdown()

    def _handler(self):
        platform = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def answer(self, body, status=200):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def handle_any(self, body):
                url = urlparse(self.path)
                q = {k: v[0] for k, v in parse_qs(url.query).items()}
                if url.path == "/cgi-bin/token":
                    if len(q.get("secret", "")) != 32:
                        return self.answer({"errcode": 40125, "errmsg": "invalid appsecret"})
                    return self.answer({"access_token": platform.issue(q["appid"]), "expires_in": 7200})
                if url.path == "/cgi-bin/stable_token":
                    b = json.loads(body or b"{}")
                    return self.answer({"access_token": platform.issue(b["appid"]), "expires_in": 7200})
                if url.path == "/sns/jscode2session":
                    code = q.get("js_code", "")
                    return self.answer({"openid": code.removeprefix("code-"), "session_key": "c2Vzc2lvbg=="})
                if url.path == "/cgi-bin/account/getaccountbasicinfo":
                    appid = platform.tokens.get(q.get("access_token", ""))
                    if appid is None:
                        return self.answer({"errcode": 40001, "errmsg": "invalid credential"})
                    return self.answer({"errcode": 0, "errmsg": "ok", "appid": appid})
                platform.calls.append((self.command, url.path, q, body))
                if q.get("access_token") not in platform.tokens:
                    return self.answer({"errcode": 40001, "errmsg": "invalid credential"})
                return self.answer({"errcode": 0, "errmsg": "ok"})

            def do_GET(self):
                self.handle_any(b"")

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                self.handle_any(self.rfile.read(length))

        return Handler
