#!/usr/bin/env python3
"""Hostile clients and careless tenants against a running gateway (loadtest/attacks.sh starts
one and runs these in turn). Each attack prints one line of JSON: what was tried and what the
gateway did, so two builds can be compared. Python's standard library only; every address is
on this machine's loopback.

Usage: attacks.py ATTACK --api HOST:PORT --admin HOST:PORT [--pid PID]
"""

import argparse
import http.client
import http.server
import json
import os
import socket
import threading
import time

APP_A = ("wx0123456789abcdef", "0123456789abcdef0123456789abcdef")
APP_B = ("wxfedcba9876543210", "fedcba9876543210fedcba9876543210")
ADMIN_TOKEN = "bench-admin-token"
WITHHELD = (b"POST /cgi-bin/stable_token HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n")


def addr(text):
    host, port = text.rsplit(":", 1)
    return host, int(port)


def call(api, method, path, body=None, timeout=20, headers=None):
    conn = http.client.HTTPConnection(*api, timeout=timeout)
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    conn.request(method, path, body=data, headers=headers or {})
    resp = conn.getresponse()
    raw = resp.read()
    conn.close()
    try:
        return resp.status, json.loads(raw)
    except ValueError:
        return resp.status, raw.decode("utf-8", "replace")


def token(api, app):
    _, v = call(api, "GET", f"/cgi-bin/token?grant_type=client_credential&appid={app[0]}&secret={app[1]}")
    return v["access_token"]


def timed_token(api, within):
    """How long a real client from 127.0.0.1 waits for a token, or None past `within`."""
    started = time.monotonic()
    try:
        status, v = call(api, "GET",
                         f"/cgi-bin/token?grant_type=client_credential&appid={APP_A[0]}&secret={APP_A[1]}",
                         timeout=within)
        if status == 200 and "access_token" in v:
            return round(time.monotonic() - started, 2)
    except OSError:
        pass
    return None


def connect_from(source, api):
    s = socket.socket()
    s.bind((source, 0))
    s.settimeout(5)
    s.connect(api)
    return s


def answered(s, wait):
    s.settimeout(wait)
    try:
        return s.recv(4096)
    except OSError:
        return b""


def withheld_one_address(args):
    """One address takes every connection with complete heads and no bodies."""
    held, refused = [], 0
    for _ in range(args.connections):
        s = connect_from("127.0.0.2", args.api)
        s.sendall(WITHHELD)
        held.append(s)
    time.sleep(0.5)
    for s in held:
        if answered(s, 0.05).startswith(b"HTTP/1.1 503"):
            refused += 1
    latency = timed_token(args.api, 20)
    for s in held:
        s.close()
    return {"connections": args.connections, "refused_503": refused,
            "real_client_served_after_s": latency}


def withheld_many_addresses(args):
    """As many addresses as connections, one each, complete heads and no bodies."""
    held = []
    for i in range(args.connections):
        s = connect_from(f"127.0.{1 + i // 250}.{1 + i % 250}", args.api)
        s.sendall(WITHHELD)
        held.append(s)
    latency = timed_token(args.api, 30)
    timed_out = sum(1 for s in held if answered(s, 0.5).startswith(b"HTTP/1.1 408"))
    for s in held:
        s.close()
    return {"connections": args.connections, "answered_408": timed_out,
            "real_client_served_after_s": latency}


class Origin(http.server.BaseHTTPRequestHandler):
    """Serves a small PNG at any path; answers pushes with the status its path names."""
    png = None

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(self.png)))
        self.end_headers()
        self.wfile.write(self.png)

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        status = 500 if self.path.startswith("/fail") else 200
        self.send_response(status)
        self.send_header("Content-Length", "7")
        self.end_headers()
        self.wfile.write(b"success")

    def log_message(self, *_):
        pass


def tiny_png():
    import struct
    import zlib
    raw = b"".join(b"\x00" + bytes([200, 30, 30]) * 8 for _ in range(8))
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def origin(port):
    Origin.png = tiny_png()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Origin)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def visit(api, tok, openids):
    return call(api, "POST", f"/wxa/visit/report?access_token={tok}", {"openids": openids})[1]


def media_body(url):
    return {"media_url": url, "media_type": 2, "version": 2, "scene": 1, "openid": "oAttack_1"}


def admin_jobs(args, state):
    _, v = call(args.admin, "GET", f"/admin/media?state={state}&limit=10000",
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    return v if isinstance(v, list) else []


def disconnect_mid_submit(args):
    """Submissions whose clients reset the connection 0 to 3 ms after sending them."""
    server = origin(args.origin_port)
    tok = token(args.api, APP_B)
    visit(args.api, tok, ["oAttack_1"])
    body = json.dumps(media_body(f"http://127.0.0.1:{args.origin_port}/a.png")).encode()
    request = (f"POST /wxa/media_check_async?access_token={tok} HTTP/1.1\r\nHost: x\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    for i in range(300):
        s = socket.create_connection(args.api)
        s.sendall(request)
        time.sleep(i * 0.00001)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()
        if i % 20 == 19:
            time.sleep(0.2)
    time.sleep(5)
    # A job written but never scheduled stays `queued` for good; the others have been fetched
    # and analysed by now (a push that failed waits in `pushing` for its retry).
    stuck = len(admin_jobs(args, "queued"))
    accepted = 0
    for _ in range(4):
        status, v = call(args.api, "POST", f"/wxa/media_check_async?access_token={tok}",
                         media_body(f"http://127.0.0.1:{args.origin_port}/a.png"))
        accepted += v.get("errcode") == 0
    server.shutdown()
    return {"disconnects": 300, "jobs_written_never_scheduled": stuck,
            "accepted_of_4_after": accepted}


def failing_push_tenant(args):
    """App A's push URL answers 500: its jobs stay open for the whole retry schedule."""
    server = origin(args.origin_port)
    ta, tb = token(args.api, APP_A), token(args.api, APP_B)
    visit(args.api, ta, ["oAttack_1"])
    visit(args.api, tb, ["oAttack_1"])
    url = f"http://127.0.0.1:{args.origin_port}/a.png"
    a_accepted, a_refused = 0, 0
    for _ in range(args.max_queued + 5):
        _, v = call(args.api, "POST", f"/wxa/media_check_async?access_token={ta}", media_body(url))
        if v.get("errcode") == 0:
            a_accepted += 1
        else:
            a_refused += 1
    _, q = call(args.api, "POST", f"/cgi-bin/openapi/quota/get?access_token={ta}",
                {"cgi_path": "/wxa/media_check_async"})
    time.sleep(2)  # app B's jobs of the attack before are delivered by now
    b_accepted = 0
    for _ in range(5):
        _, v = call(args.api, "POST", f"/wxa/media_check_async?access_token={tb}", media_body(url))
        b_accepted += v.get("errcode") == 0
    server.shutdown()
    return {"a_accepted": a_accepted, "a_refused": a_refused,
            "a_quota_used": q.get("quota", {}).get("used"), "b_accepted_of_5": b_accepted}


def visit_flood(args):
    """App A reports fresh openids, 1000 a report, as fast as it is let; then app B reports."""
    ta, tb = token(args.api, APP_A), token(args.api, APP_B)
    recorded, refused_calls, n = 0, 0, 0
    started = time.monotonic()
    while time.monotonic() - started < args.seconds:
        v = visit(args.api, ta, [f"flood{n + i}" for i in range(1000)])
        n += 1000
        if v.get("errcode") != 0:
            refused_calls += 1
            continue
        recorded += v.get("recorded", 0)
    v = visit(args.api, tb, [f"real{i}" for i in range(10)])
    return {"a_recorded": recorded, "a_reports_refused": refused_calls,
            "b_recorded_of_10": v.get("recorded"),
            "b_errmsg": (v.get("failed") or [{}])[0].get("errmsg")}


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024
    return None


def risk_rank_bloat(args):
    """300 getUserRiskRank calls, each with a 1 MB mobile_no (just under the 1 MiB body limit)
    for a new user."""
    ta = token(args.api, APP_A)
    before = rss_mib(args.pid)
    answers = {}
    for i in range(300):
        # is_test skips the visit rule (app A's visits are at their cap after the flood).
        body = {"appid": APP_A[0], "openid": f"rr{i}", "scene": 0, "client_ip": "10.0.0.1",
                "is_test": True,
                "mobile_no": "1" * 1_000_000}
        try:
            status, v = call(args.api, "POST", f"/wxa/getuserriskrank?access_token={ta}", body)
            key = f"{status}/{v.get('errcode') if isinstance(v, dict) else '?'}"
        except OSError as e:
            key = type(e).__name__
        answers[key] = answers.get(key, 0) + 1
    time.sleep(1)
    return {"calls": 300, "answers": answers, "rss_growth_mib": rss_mib(args.pid) - before}


def spend(args):
    """Spends quota and the month's reset, rotates tokens and reports a visit, as app B (app
    A's visits are at their cap after the flood), before a restart."""
    _, v = call(args.api, "POST",
                f"/cgi-bin/clear_quota/v2?appid={APP_B[0]}&appsecret={APP_B[1]}", {})
    first = token(args.api, APP_B)
    token(args.api, APP_B)
    last = token(args.api, APP_B)
    visit(args.api, last, ["oKept_1"])
    for _ in range(3):
        call(args.api, "POST", f"/wxa/msg_sec_check?access_token={last}",
             {"content": "你好", "version": 2, "scene": 2, "openid": "oKept_1"})
    with open(args.state, "w") as f:
        json.dump({"first": first, "last": last}, f)
    return {"reset": v.get("errcode"), "checks": 3}


def kept(args):
    """After the restart: what of the spending the gateway remembers."""
    with open(args.state) as f:
        tokens = json.load(f)
    _, q = call(args.api, "POST", f"/cgi-bin/openapi/quota/get?access_token={tokens['last']}",
                {"cgi_path": "/wxa/msg_sec_check"})
    _, old = call(args.api, "POST", f"/wxa/msg_sec_check?access_token={tokens['first']}",
                  {"content": "你好", "version": 2, "scene": 2, "openid": "oKept_1"})
    _, fresh = call(args.api, "POST", f"/wxa/msg_sec_check?access_token={tokens['last']}",
                    {"content": "你好", "version": 2, "scene": 2, "openid": "oKept_1"})
    _, reset = call(args.api, "POST",
                    f"/cgi-bin/clear_quota/v2?appid={APP_B[0]}&appsecret={APP_B[1]}", {})
    return {"quota_used_of_3": q.get("quota", {}).get("used"),
            "superseded_token": old.get("errcode"), "visit_still_fresh": fresh.get("errcode") == 0,
            "second_reset_this_month": reset.get("errcode")}


ATTACKS = {
    "withheld-one-address": withheld_one_address,
    "withheld-many-addresses": withheld_many_addresses,
    "disconnect-mid-submit": disconnect_mid_submit,
    "failing-push-tenant": failing_push_tenant,
    "visit-flood": visit_flood,
    "risk-rank-bloat": risk_rank_bloat,
    "spend": spend,
    "kept": kept,
}


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("attack", choices=sorted(ATTACKS))
    p.add_argument("--api", type=addr, default=("127.0.0.1", 18080))
    p.add_argument("--admin", type=addr, default=("127.0.0.1", 19090))
    p.add_argument("--pid", type=int)
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--max-queued", type=int, default=100)
    p.add_argument("--seconds", type=float, default=5)
    p.add_argument("--origin-port", type=int, default=18099)
    p.add_argument("--state", default="target/attack-state.json")
    args = p.parse_args()
    print(json.dumps({"attack": args.attack, **ATTACKS[args.attack](args)}, ensure_ascii=False),
          flush=True)


if __name__ == "__main__":
    main()
