"""Every endpoint of docs/openapi.yaml, driven by schemathesis with generated requests (valid
and not) against a real gateway with valid credentials: no answer is a server error (5xx), and
each answer's status is one the document lists."""

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from conftest import APPID, ROOT, SECRET, issue_token, start_modgate, stop_modgate

ADMIN_TOKEN = "openapi-admin-token"
SCHEMA = schemathesis.openapi.from_path(str(ROOT / "docs" / "openapi.yaml"))
ADMIN_PATHS = ("/admin/", "/healthz", "/readyz", "/metrics", "/console/")


@pytest.fixture(scope="module")
def gateway():
    proc, api, admin = start_modgate(
        f"""
[admin]
listen = "127.0.0.1:0"
token = "{ADMIN_TOKEN}"
[limits]
enforce = false
[[apps]]
appid = "{APPID}"
secret = "{SECRET}"
"""
    )
    token = issue_token(api)
    yield api, admin, token
    stop_modgate(proc)


def documented_statuses(operation):
    return {int(code) for code in operation.definition.raw.get("responses", {}) if code.isdigit()}


@SCHEMA.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors_and_only_documented_statuses(case, gateway):
    api, admin, token = gateway
    path = case.operation.path
    if path.startswith(ADMIN_PATHS):
        base = admin
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    else:
        base = api
        headers = {}
        if any("accessToken" in s for s in case.operation.definition.raw.get("security", [])):
            # A valid token, so generated bodies reach the checks behind authentication.
            case.query = {**(case.query or {}), "access_token": token}
    response = case.call(base_url=base, headers=headers, timeout=20)
    assert response.status_code < 500, f"{case.method} {path}: {response.status_code} {response.text[:500]}"
    if case.method.upper() != case.operation.method.upper():
        # A method the operation does not have: 405, or the platform's 43002 ("require POST").
        assert response.status_code in (200, 405), f"{case.method} {path}: {response.status_code}"
        if response.status_code == 200:
            assert response.json()["errcode"] == 43002, response.text[:300]
        return
    assert response.status_code in documented_statuses(case.operation), (
        f"{case.method} {path}: undocumented status {response.status_code} {response.text[:300]}"
    )
