"""WxJava (com.github.binarywang:weixin-java-miniapp 4.7.0 from Maven Central), unchanged,
pointed at modgate through its one base-URL setting, `apiHostUrl`: its token, its security
service's text v1 and v2, image v1, media async v1 and v2 and user risk rank; and, with modgate in
pass-through mode in front of a stand-in platform, a forwarded API and a login through which the
v2 check's visit rule is met."""

import json
import os
import subprocess
from pathlib import Path

import pytest

from conftest import APPID, SECRET, start_modgate, stop_modgate
from standin import Platform
from test_media_push import PNG

JAVA = Path(__file__).resolve().parent / "java"


@pytest.fixture(scope="module")
def classpath():
    """Builds the Java side once (Maven resolves WxJava; `scripts/test` fetched it already)."""
    subprocess.run(
        ["mvn", "-q", "-B", "compile", "dependency:build-classpath", "-Dmdep.outputFile=target/classpath.txt"],
        cwd=JAVA,
        check=True,
    )
    return f"{JAVA / 'target' / 'classes'}{os.pathsep}{(JAVA / 'target' / 'classpath.txt').read_text().strip()}"


def run_wxjava(classpath, api, openid, mode, stable=False, tmp_path=None):
    image = tmp_path / "photo.png"
    image.write_bytes(PNG)
    args = [api, APPID, SECRET, openid, "http://media.example/photo.png", str(image), mode]
    if stable:
        args.append("stable")
    out = subprocess.run(
        ["java", "-cp", classpath, "compat.Check", *args], capture_output=True, text=True, timeout=120, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def assert_security_calls(r):
    assert r["checkMessageV1"] is True, r
    assert r["checkMessageV1Risky"]["errcode"] == 87014, r
    assert r["checkMessageV2"]["suggest"] == "pass", r
    assert str(r["checkMessageV2"]["label"]) == "100", r  # WxJava types the label as a String
    assert r["checkMessageV2"]["detail"] >= 1, r
    assert r["checkImageV1"] is True, r
    for name in ["mediaCheckAsyncV1", "mediaCheckAsyncV2"]:
        assert isinstance(r[name], str) and len(r[name].split("-")) == 3, (name, r)
    assert r["getUserRiskRank"]["risk_rank"] in range(0, 5), r


@pytest.mark.parametrize("stable", [False, True])
def test_direct(classpath, tmp_path, stable):
    proc, api, _ = start_modgate(
        f"""
[admin]
listen = "127.0.0.1:0"
[[apps]]
appid = "{APPID}"
secret = "{SECRET}"
visit_check = "off"
"""
    )
    try:
        r = run_wxjava(classpath, api, "oWxJavaUser", "direct", stable=stable, tmp_path=tmp_path)
        assert len(r["getAccessToken"]) >= 64, r
        assert_security_calls(r)
    finally:
        stop_modgate(proc)


def test_pass_through(classpath, tmp_path):
    platform = Platform()
    proc, api, _ = start_modgate(
        f"""
[admin]
listen = "127.0.0.1:0"
[upstream]
url = "{platform.url}"
timeout_secs = 5
[[apps]]
appid = "{APPID}"
secret = "{SECRET}"
"""
    )
    try:
        r = run_wxjava(classpath, api, "oLoggedIn", "passthrough", tmp_path=tmp_path)
        # The token is the platform's, issued through modgate.
        assert r["getAccessToken"] in platform.tokens, r
        # A forwarded API reached the platform with that token and its body.
        assert r["sendSubscribeMsg"] == "sent", r
        sent = [c for c in platform.calls if c[1] == "/cgi-bin/message/subscribe/send"]
        assert len(sent) == 1 and sent[0][2]["access_token"] == r["getAccessToken"], platform.calls
        assert json.loads(sent[0][3])["touser"] == "oLoggedIn"
        # The login passed through, so the v2 calls meet the visit rule with no visit report.
        assert r["getSessionInfo"] == "oLoggedIn", r
        assert_security_calls(r)
        # Content security never reached the platform.
        assert not [c for c in platform.calls if c[1].startswith("/wxa/")], platform.calls
    finally:
        stop_modgate(proc)
        platform.stop()
