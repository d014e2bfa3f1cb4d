"""The operator console in headless Chromium (Debian's chromium and chromium-driver, driven over
WebDriver by selenium), against a real modgate process: sign in with the admin token, claim and
decide a review item, edit a keyword table and see the effect on a check. Screenshots of each
step are kept in target/console-screenshots/."""

import shutil

import pytest
import requests
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

from conftest import APPID, ROOT, SECRET, issue_token, start_modgate, stop_modgate

ADMIN_TOKEN = "console-admin-token"
SHOTS = ROOT / "target" / "console-screenshots"
OPENID = "oConsoleUser_0123456789"


@pytest.fixture(scope="module")
def gateway():
    proc, api, admin = start_modgate(
        f"""
[admin]
listen = "127.0.0.1:0"
token = "{ADMIN_TOKEN}"
[limits]
enforce = false
[review]
pass_sample_every = 0
[[apps]]
appid = "{APPID}"
secret = "{SECRET}"
"""
    )
    token = issue_token(api)
    yield api, admin, token
    stop_modgate(proc)


@pytest.fixture(scope="module")
def browser():
    chromium = shutil.which("chromium")
    driver_path = shutil.which("chromedriver")
    assert chromium and driver_path, "scripts/test installs chromium and chromium-driver"
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000",
                "--lang=zh-CN", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    SHOTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


def admin_api(admin, method, path, **kw):
    resp = requests.request(method, admin + path, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                            timeout=10, **kw)
    assert resp.ok, f"{method} {path}: {resp.status_code} {resp.text}"
    return resp.json()


def check(api, token, content):
    resp = requests.post(f"{api}/wxa/msg_sec_check", params={"access_token": token}, timeout=10,
                         json={"content": content, "version": 2, "scene": 2, "openid": OPENID})
    body = resp.json()
    assert body["errcode"] == 0, body
    return body


def shot(driver, name):
    path = SHOTS / f"{name}.png"
    assert driver.save_screenshot(str(path)), path
    assert path.stat().st_size > 10_000, "a blank screenshot"


def status_says(driver, text, wait):
    wait.until(EC.text_to_be_present_in_element((By.ID, "status"), text))


def test_sign_in_review_and_edit_a_table(gateway, browser):
    api, admin, token = gateway
    driver, wait = browser, WebDriverWait(browser, 15)
    admin_api(admin, "POST", f"/admin/apps/{APPID}/keywords",
              json=[{"keyword": "蓝莓果酱", "label": 20001, "level": 70, "suggest": "review"}])
    queued = check(api, token, "我朋友卖蓝莓果酱")
    assert queued["result"]["suggest"] == "review"
    trace_id = queued["trace_id"]

    # Served by the admin listener itself, with a policy that allows nothing from elsewhere.
    page = requests.get(f"{admin}/console/", timeout=10)
    assert page.status_code == 200
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "http://" not in page.text and "https://" not in page.text

    # A wrong token is refused; the right one signs in.
    driver.get(f"{admin}/console/")
    driver.find_element(By.ID, "token").send_keys("not-the-token")
    driver.find_element(By.ID, "reviewer").send_keys("王审核")
    driver.find_element(By.CSS_SELECTOR, "#login-form button").click()
    status_says(driver, "admin token was refused", wait)
    driver.find_element(By.ID, "token").send_keys(ADMIN_TOKEN)
    driver.find_element(By.CSS_SELECTOR, "#login-form button").click()
    wait.until(EC.visibility_of_element_located((By.ID, "nav")))

    # The queue lists the item, its Chinese text shown as sent.
    row = wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, f'tr[data-id="{trace_id}"]')))
    assert "我朋友卖蓝莓果酱" in row.text
    assert "蓝莓果酱" in row.text and "review 20001" in row.text
    shot(driver, "01-review-queue")

    # With the keyboard: select it and claim it (c).
    row.click()
    row.send_keys("c")
    wait.until(EC.text_to_be_present_in_element(
        (By.CSS_SELECTOR, f'tr[data-id="{trace_id}"]'), "claimed by 王审核"))
    item = admin_api(admin, "GET", f"/admin/review/items/{trace_id}")
    assert item["claim"]["reviewer"] == "王审核"

    # Confirm risky with a reason, feeding the hit word back to the table.
    driver.find_element(By.ID, "decide-reason").send_keys("暗语：代指违禁品")
    driver.find_element(By.ID, "decide-feedback").click()
    shot(driver, "02-claimed")
    driver.find_element(By.ID, "act-risky").click()
    status_says(driver, "Decided risky", wait)
    item = admin_api(admin, "GET", f"/admin/review/items/{trace_id}")
    assert item["decision"]["outcome"] == "risky"
    assert item["decision"]["reviewer"] == "王审核"
    assert item["decision"]["reason"] == "暗语：代指违禁品"
    audit = admin_api(admin, "GET", "/admin/review/audit")
    assert [(a["id"], a["reviewer"]) for a in audit] == [(trace_id, "王审核")]
    assert check(api, token, "我朋友卖蓝莓果酱")["result"]["suggest"] == "risky"

    # Keyword tables: add an entry in the console, and the next check obeys it.
    assert check(api, token, "晚安好梦")["result"]["suggest"] == "pass"
    driver.find_element(By.CSS_SELECTOR, 'nav button[data-view="keywords"]').click()
    Select(driver.find_element(By.ID, "kw-app")).select_by_value(APPID)
    wait.until(EC.text_to_be_present_in_element((By.ID, "kw-table"), "蓝莓果酱"))
    driver.find_element(By.ID, "kw-word").send_keys("晚安好梦")
    Select(driver.find_element(By.ID, "kw-suggest")).select_by_visible_text("risky")
    driver.find_element(By.CSS_SELECTOR, "#kw-add button").click()
    wait.until(EC.text_to_be_present_in_element((By.ID, "kw-table"), "晚安好梦"))
    shot(driver, "03-keywords")
    verdict = check(api, token, "晚安好梦")
    assert verdict["result"] == {"suggest": "risky", "label": 20001}, verdict
    entries = admin_api(admin, "GET", f"/admin/apps/{APPID}/keywords")
    assert {"keyword": "晚安好梦", "label": 20001, "level": 90, "suggest": "risky"} in entries

    # Deleting it in the console lifts it.
    driver.find_element(By.CSS_SELECTOR, '#kw-table button[aria-label="Delete 晚安好梦"]').click()
    status_says(driver, "Deleted 晚安好梦", wait)
    assert check(api, token, "晚安好梦")["result"]["suggest"] == "pass"

    # Risk lists: a black-listed openid added in the console is in force.
    driver.find_element(By.CSS_SELECTOR, 'nav button[data-view="risk"]').click()
    Select(driver.find_element(By.ID, "risk-app")).select_by_value(APPID)
    driver.find_element(By.ID, "risk-value").send_keys(OPENID)
    driver.find_element(By.ID, "risk-note").send_keys("刷单账号")
    driver.find_element(By.CSS_SELECTOR, "#risk-add button").click()
    wait.until(EC.text_to_be_present_in_element((By.ID, "risk-table"), "刷单账号"))
    lists = admin_api(admin, "GET", f"/admin/apps/{APPID}/risk-lists")
    assert [(e["list"], e["type"], e["value"]) for e in lists] == [("black", "openid", OPENID)]

    # Hash banks: the global bank lists its entries.
    driver.find_element(By.CSS_SELECTOR, 'nav button[data-view="banks"]').click()
    Select(driver.find_element(By.ID, "bank-scope")).select_by_value("global")
    status_says(driver, "in the global bank", wait)

    # Usage, and a job looked up by trace_id (a text trace_id is not a job: the API's 404).
    driver.find_element(By.CSS_SELECTOR, 'nav button[data-view="usage"]').click()
    wait.until(EC.text_to_be_present_in_element((By.ID, "usage-table"), APPID))
    driver.find_element(By.CSS_SELECTOR, 'nav button[data-view="jobs"]').click()
    driver.find_element(By.ID, "job-id").send_keys(trace_id)
    driver.find_element(By.CSS_SELECTOR, "#job-form button").click()
    status_says(driver, "no such", wait)
    shot(driver, "04-usage-and-jobs")
