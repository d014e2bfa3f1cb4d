"""wechatpy, unchanged, pointed at modgate: token fetch, v1 check_text_security, a v2 call
through the SDK's generic post, and the SDK's refresh-and-retry on a superseded token."""

import pytest
import requests
from wechatpy import WeChatClient
from wechatpy.client.api import WeChatWxa
from wechatpy.exceptions import WeChatClientException

from conftest import APPID, SECRET

RISKY_TEST_STRING = "特3456书yuuo莞6543李zxcz蒜7782法fgnv级"


def make_client(modgate, monkeypatch, appid=APPID, secret=SECRET):
    """A stock WeChatClient whose base URLs point at modgate."""
    monkeypatch.setattr(WeChatClient, "API_BASE_URL", f"{modgate}/cgi-bin/")
    monkeypatch.setattr(WeChatWxa, "API_BASE_URL", f"{modgate}/")

    class Client(WeChatClient):
        # The SDK hard-codes the token URL; only its host changes.
        def fetch_access_token(self):
            return self._fetch_access_token(
                url=f"{modgate}/cgi-bin/token",
                params={"grant_type": "client_credential", "appid": self.appid, "secret": self.secret},
            )

    return Client(appid, secret)


@pytest.fixture
def client(modgate, monkeypatch):
    return make_client(modgate, monkeypatch)


def test_token_fetch(client):
    result = client.fetch_access_token()
    assert result["expires_in"] == 7200
    assert len(result["access_token"]) >= 64
    assert client.access_token == result["access_token"]


def test_v1_check_text_security(client):
    assert client.wxa.check_text_security("今天天气真好")["errcode"] == 0
    with pytest.raises(WeChatClientException) as err:
        client.wxa.check_text_security(RISKY_TEST_STRING)
    assert err.value.errcode == 87014
    assert "rid: " in err.value.errmsg


def test_v2_through_generic_post(client, modgate):
    # A v2 check needs a recent visit by the user (else 61010), reported through the same SDK.
    report = client.post("wxa/visit/report", data={"openid": "oUser-1"}, api_base_url=f"{modgate}/")
    assert report["recorded"] == 1
    body = {"content": "来玩网络赌博", "version": 2, "scene": 2, "openid": "oUser-1"}
    result = client.post("wxa/msg_sec_check", data=body, api_base_url=f"{modgate}/")
    assert result["errcode"] == 0
    assert result["result"] == {"suggest": "risky", "label": 20006}
    assert result["detail"][0]["strategy"] == "content_model"
    assert result["detail"][1] == {"strategy": "keyword", "errcode": 0}
    assert len(result["trace_id"].split("-")) == 3

    body["content"] = "你好"
    result = client.post("wxa/msg_sec_check", data=body, api_base_url=f"{modgate}/")
    assert result["result"] == {"suggest": "pass", "label": 100}


def test_sdk_refreshes_a_superseded_token_and_retries(client, modgate):
    client.fetch_access_token()
    stale = client.access_token
    # Two rotations elsewhere: the SDK's cached token is now two generations old (40001).
    for _ in range(2):
        requests.get(
            f"{modgate}/cgi-bin/token",
            params={"grant_type": "client_credential", "appid": APPID, "secret": SECRET},
            timeout=10,
        ).raise_for_status()
    assert client.wxa.check_text_security("你好")["errcode"] == 0
    assert client.access_token != stale


def test_stale_user_is_61010(client, modgate):
    with pytest.raises(WeChatClientException) as err:
        client.post(
            "wxa/msg_sec_check",
            data={"content": "你好", "version": 2, "scene": 2, "openid": "never-visited"},
            api_base_url=f"{modgate}/",
        )
    assert err.value.errcode == 61010


def test_token_errors_surface_as_sdk_exceptions(modgate, monkeypatch):
    with pytest.raises(WeChatClientException) as err:
        make_client(modgate, monkeypatch, secret="0" * 32).fetch_access_token()
    assert err.value.errcode == 40125
