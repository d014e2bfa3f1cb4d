"""The operator console in headless Chromium (Debian's chromium and chromium-driver, driven over
WebDriver by selenium), against a real modgate process: sign in with the shared admin token,
claim and decide a review item, edit a keyword table and see the effect on a check; sign in with
a named reviewer's token and work the queue by search, pages, combined filters and bulk
decisions, then read the audit log; as an admin, create and edit apps (errors shown by field),
upload files to a hash bank, preview a media item through the admin listener, read a job's
strategies, retry a dead-lettered job, and chart an app's usage. Screenshots of the main screens
are kept in target/console-screenshots/."""

import io
import random
import shutil
import threading
import time
from http.server import BaseHTTPRequestHandler

import pytest
import requests
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait
from PIL import Image, ImageFilter

from conftest import APPID, ROOT, SECRET, issue_token, serve, start_modgate, stop_modgate

ADMIN_TOKEN = "console-admin-token"
ALICE_TOKEN = "alice-reviewer-console-token"
OPS_TOKEN = "ops-admin-console-token-0001"
SHOTS = ROOT / "target" / "console-screenshots"
OPENID = "oConsoleUser_0123456789"
MEDIA_APPID = "wx00000000000000c1"
MEDIA_SECRET = "c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1"


def photo_png():
    """A textured image (blurred noise in colour): enough detail for a PDQ hash."""
    rng = random.Random(7)
    small = Image.new("RGB", (48, 36))
    small.putdata([(rng.randrange(256), rng.randrange(256), rng.randrange(256)) for _ in range(48 * 36)])
    img = small.resize((480, 360), Image.BICUBIC).filter(ImageFilter.GaussianBlur(2))
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


PHOTO = photo_png()



class Origin(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(PHOTO)))
        self.end_headers()
        self.wfile.write(PHOTO)

    def log_message(self, *args):
        pass


class Receiver(BaseHTTPRequestHandler):
    """Refuses pushes until `accepting` is set; counts the ones it took."""

    accepting = threading.Event()
    taken = []

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        ok = Receiver.accepting.is_set()
        body = b"success" if ok else b"down"
        self.send_response(200 if ok else 503)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        if ok:
            Receiver.taken.append(self.path)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def servers():
    origin, receiver = serve(Origin), serve(Receiver)
    yield (f"http://127.0.0.1:{origin.server_address[1]}",
           f"http://127.0.0.1:{receiver.server_address[1]}")
    origin.shutdown()
    receiver.shutdown()


@pytest.fixture(scope="module")
def gateway(servers):
    _, receiver = servers
    proc, api, admin = start_modgate(
        f"""
[admin]
listen = "127.0.0.1:0"
token = "{ADMIN_TOKEN}"
[[admin.tokens]]
name = "alice"
token = "{ALICE_TOKEN}"
role = "reviewer"
[[admin.tokens]]
name = "ops"
token = "{OPS_TOKEN}"
role = "admin"
[limits]
enforce = false
[review]
pass_sample_every = 0
[media]
allow_networks = ["127.0.0.0/8"]
push_retry_secs = [0.05, 0.05]
[[apps]]
appid = "{APPID}"
secret = "{SECRET}"
[[apps]]
appid = "{MEDIA_APPID}"
secret = "{MEDIA_SECRET}"
push_url = "{receiver}/push"
push_token = "consolePushToken"
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


def sign_in(driver, admin, wait, token, name=""):
    """Signs out whoever is signed in, then signs in with `token` (and a typed name)."""
    driver.get(f"{admin}/console/")
    driver.execute_script("sessionStorage.clear(); localStorage.clear();")
    driver.get(f"{admin}/console/")
    driver.find_element(By.ID, "token").send_keys(token)
    if name:
        driver.find_element(By.ID, "reviewer").send_keys(name)
    driver.find_element(By.CSS_SELECTOR, "#login-form button").click()
    wait.until(EC.visibility_of_element_located((By.ID, "nav")))


def nav(driver, view):
    driver.find_element(By.CSS_SELECTOR, f'nav button[data-view="{view}"]').click()


def wait_for(predicate, what, timeout=20):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


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


def test_a_named_reviewer_searches_pages_and_decides_in_bulk(gateway, browser):
    api, admin, token = gateway
    driver, wait = browser, WebDriverWait(browser, 15)
    admin_api(admin, "POST", f"/admin/apps/{APPID}/keywords",
              json=[{"keyword": "草莓果酱", "label": 20002, "level": 70, "suggest": "review"},
                    {"keyword": "杏仁酥糖", "label": 20001, "level": 70, "suggest": "review"}])
    for i in range(60):
        assert check(api, token, f"第{i}号摊位卖杏仁酥糖")["result"]["suggest"] == "review"
    strawberry = [check(api, token, f"{who}卖草莓果酱")["trace_id"] for who in ("甲", "乙", "丙")]

    # A named token: no name typed, the page says who and hides what a reviewer may not do.
    sign_in(driver, admin, wait, ALICE_TOKEN)
    assert driver.find_element(By.ID, "whoami").text == "alice · reviewer"
    status_says(driver, "63 item(s) match", wait)
    assert driver.find_element(By.ID, "review-page").text == "1–50 of 63"
    assert len(driver.find_elements(By.CSS_SELECTOR, "#review-items tbody tr")) == 50
    driver.find_element(By.ID, "review-next").click()
    wait.until(EC.text_to_be_present_in_element((By.ID, "review-page"), "51–63 of 63"))
    assert len(driver.find_elements(By.CSS_SELECTOR, "#review-items tbody tr")) == 13

    # Search: one stall by its number.
    driver.find_element(By.ID, "review-q").send_keys("第17号")
    driver.find_element(By.CSS_SELECTOR, "#review-filter button").click()
    status_says(driver, "1 item(s) match", wait)
    assert "第17号摊位卖杏仁酥糖" in driver.find_element(By.CSS_SELECTOR, "#review-items tbody tr").text

    # Filters combine: the word and the label; all of the page selected; confirmed in bulk.
    driver.find_element(By.ID, "review-q").clear()
    driver.find_element(By.ID, "review-q").send_keys("果酱")
    driver.find_element(By.ID, "review-label").send_keys("20002")
    driver.find_element(By.CSS_SELECTOR, "#review-filter button").click()
    status_says(driver, "3 item(s) match", wait)
    driver.find_element(By.ID, "review-all").click()
    assert driver.find_element(By.ID, "bulk-count").text == "3 selected"
    driver.find_element(By.ID, "bulk-reason").send_keys("同一卖家的暗语")
    shot(driver, "05-review-bulk-selection")
    driver.find_element(By.ID, "bulk-risky").click()
    status_says(driver, "risky: 3 done", wait)
    for trace_id in strawberry:
        item = admin_api(admin, "GET", f"/admin/review/items/{trace_id}")
        assert item["decision"]["outcome"] == "risky"
        assert item["decision"]["reviewer"] == "alice"
        assert item["decision"]["reason"] == "同一卖家的暗语"

    # The keyboard: select one with x, decide it with a bulk pass.
    driver.find_element(By.ID, "review-label").clear()
    driver.find_element(By.ID, "review-q").clear()
    driver.find_element(By.ID, "review-q").send_keys("第42号")
    driver.find_element(By.CSS_SELECTOR, "#review-filter button").click()
    status_says(driver, "1 item(s) match", wait)
    row = driver.find_element(By.CSS_SELECTOR, "#review-items tbody tr")
    row.click()
    row.send_keys("x")
    assert driver.find_element(By.ID, "bulk-count").text == "1 selected"
    driver.find_element(By.ID, "bulk-pass").click()
    status_says(driver, "pass: 1 done", wait)

    # The audit log, by reviewer and outcome.
    nav(driver, "audit")
    status_says(driver, "decision(s) match", wait)
    driver.find_element(By.ID, "audit-reviewer").send_keys("alice")
    Select(driver.find_element(By.ID, "audit-outcome")).select_by_value("risky")
    driver.find_element(By.CSS_SELECTOR, "#audit-filter button").click()
    status_says(driver, "3 decision(s) match", wait)
    rows = driver.find_elements(By.CSS_SELECTOR, "#audit-table tbody tr")
    assert sorted(r.find_elements(By.TAG_NAME, "td")[8].text for r in rows) == sorted(strawberry)
    assert all("同一卖家的暗语" in r.text for r in rows)
    shot(driver, "06-audit-log")

    # A reviewer sees tables but not the controls that change them.
    nav(driver, "keywords")
    Select(driver.find_element(By.ID, "kw-app")).select_by_value(APPID)
    wait.until(EC.text_to_be_present_in_element((By.ID, "kw-table"), "草莓果酱"))
    assert not driver.find_element(By.ID, "kw-add").is_displayed()
    assert not any(b.is_displayed() for b in driver.find_elements(By.CSS_SELECTOR, "#kw-table button"))


def test_an_admin_edits_apps_banks_media_jobs_and_reads_usage(gateway, servers, browser, tmp_path):
    api, admin, _ = gateway
    origin, _ = servers
    driver, wait = browser, WebDriverWait(browser, 15)
    sign_in(driver, admin, wait, OPS_TOKEN)
    assert driver.find_element(By.ID, "whoami").text == "ops · admin"

    # Apps: a new app with two bad fields is refused, each error shown beside its field.
    nav(driver, "apps")
    status_says(driver, "app(s)", wait)
    driver.find_element(By.ID, "app-new").click()
    driver.find_element(By.ID, "app-appid").send_keys("wx0000000000000ff1")
    driver.find_element(By.ID, "app-secret").send_keys("too-short")
    driver.find_element(By.ID, "app-push_url").send_keys("ftp://example.invalid/push")
    driver.find_element(By.ID, "app-save").click()
    status_says(driver, "field(s) to fix", wait)
    assert "32 ASCII letters or digits" in driver.find_element(By.ID, "app-secret-error").text
    assert "http:// or https://" in driver.find_element(By.ID, "app-push_url-error").text
    assert driver.find_element(By.ID, "app-appid-error").text == ""
    assert driver.find_element(By.ID, "app-secret").get_attribute("aria-invalid") == "true"
    shot(driver, "07-app-field-errors")
    requests_missing = requests.get(f"{admin}/admin/apps/wx0000000000000ff1", timeout=10,
                                    headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert requests_missing.status_code == 404, "nothing stored"
    driver.find_element(By.ID, "app-secret").clear()
    driver.find_element(By.ID, "app-secret").send_keys("f1" * 16)
    driver.find_element(By.ID, "app-push_url").clear()
    driver.find_element(By.ID, "app-text_per_minute").send_keys("600")
    driver.find_element(By.ID, "app-save").click()
    status_says(driver, "Saved wx0000000000000ff1", wait)
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, 'tr[data-appid="wx0000000000000ff1"]')))
    stored = admin_api(admin, "GET", "/admin/apps/wx0000000000000ff1")
    assert stored["secret"] == "f1" * 16 and stored["text_per_minute"] == 600
    # Edited: the limit changes, the rest stays.
    driver.find_element(By.CSS_SELECTOR, 'tr[data-appid="wx0000000000000ff1"]').click()
    wait.until(lambda d: d.find_element(By.ID, "app-text_per_minute").get_attribute("value") == "600")
    driver.find_element(By.ID, "app-text_per_minute").clear()
    driver.find_element(By.ID, "app-text_per_minute").send_keys("1200")
    driver.find_element(By.ID, "app-save").click()
    status_says(driver, "Saved wx0000000000000ff1", wait)
    stored = admin_api(admin, "GET", "/admin/apps/wx0000000000000ff1")
    assert stored["text_per_minute"] == 1200 and stored["secret"] == "f1" * 16

    # Banks: the photo uploaded as a file; the gateway hashes it.
    photo = tmp_path / "flyer.png"
    photo.write_bytes(PHOTO)
    nav(driver, "banks")
    Select(driver.find_element(By.ID, "bank-scope")).select_by_value("global")
    driver.find_element(By.ID, "bank-files").send_keys(str(photo))
    Select(driver.find_element(By.ID, "bank-suggest")).select_by_value("review")
    driver.find_element(By.ID, "bank-note").send_keys("传单")
    driver.find_element(By.CSS_SELECTOR, "#bank-upload button").click()
    status_says(driver, "Uploaded 1 of 1 file(s)", wait)
    bank = admin_api(admin, "GET", "/admin/banks/global")
    assert [(e["kind"], e["suggest"], e["note"]) for e in bank] == [("image", "review", "传单")]
    assert bank[0]["hash"] in driver.find_element(By.ID, "bank-table").text

    # Media: the same photo submitted is held for review; its preview comes from the admin
    # listener (a blob), and the origin is asked for it again, never by the browser itself.
    media_token = requests.get(f"{api}/cgi-bin/token", timeout=10, params={
        "grant_type": "client_credential", "appid": MEDIA_APPID, "secret": MEDIA_SECRET}).json()["access_token"]
    accepted = requests.post(f"{api}/wxa/media_check_async", params={"access_token": media_token}, timeout=10,
                             json={"media_url": f"{origin}/flyer.png", "media_type": 2, "version": 2,
                                   "scene": 1, "openid": OPENID}).json()
    assert accepted["errcode"] == 0, accepted
    trace_id = accepted["trace_id"]
    wait_for(lambda: admin_api(admin, "GET", f"/admin/media/{trace_id}")["state"] == "dead",
             "the job's pushes to run out (the receiver refuses them)")
    nav(driver, "review")
    Select(driver.find_element(By.ID, "review-kind")).select_by_value("media")
    driver.find_element(By.CSS_SELECTOR, "#review-filter button").click()
    row = wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, f'tr[data-id="{trace_id}"]')))
    row.click()
    media = wait.until(EC.presence_of_element_located((By.ID, "review-media")))
    wait.until(lambda d: d.execute_script("return arguments[0].complete && arguments[0].naturalWidth", media) == 480)
    assert media.get_attribute("src").startswith("blob:")
    shot(driver, "08-media-preview")

    # Its job: the strategies that ran; then the dead letter, retried once the receiver is up.
    driver.find_element(By.ID, "act-job").click()
    strategies = wait.until(EC.presence_of_element_located((By.ID, "job-strategies")))
    assert "hash_bank" in strategies.text or "bank" in strategies.text, strategies.text
    Select(driver.find_element(By.ID, "jobs-state")).select_by_value("dead")
    driver.find_element(By.CSS_SELECTOR, "#jobs-filter button").click()
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, f'#jobs-table tr[data-id="{trace_id}"]')))
    shot(driver, "09-dead-letters")
    Receiver.accepting.set()
    driver.find_element(By.CSS_SELECTOR, f'#jobs-table button[aria-label="Retry {trace_id}"]').click()
    status_says(driver, "is pushed again", wait)
    wait_for(lambda: admin_api(admin, "GET", f"/admin/media/{trace_id}")["state"] == "delivered",
             "the retried job to be delivered")
    assert Receiver.taken, "the receiver took the push"

    # Usage: the busiest app first, and a chart of its verdicts.
    nav(driver, "usage")
    wait.until(EC.text_to_be_present_in_element((By.ID, "usage-table"), APPID))
    first = driver.find_element(By.CSS_SELECTOR, "#usage-table tbody tr")
    assert first.get_attribute("data-appid") == APPID, "64 checks and more: the busiest"
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#usage-chart svg polyline")))
    assert len(driver.find_elements(By.CSS_SELECTOR, "#usage-chart svg polyline")) == 4
    legend = driver.find_element(By.CSS_SELECTOR, "#usage-chart .legend").text
    assert "review" in legend and "risky" in legend
    driver.find_element(By.CSS_SELECTOR, f'#usage-table tr[data-appid="{MEDIA_APPID}"]').click()
    wait.until(EC.text_to_be_present_in_element((By.ID, "usage-title"), MEDIA_APPID))
    wait.until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, "#usage-chart .legend"), "review 1"))
    Select(driver.find_element(By.ID, "usage-span")).select_by_value("day")
    wait.until(EC.text_to_be_present_in_element((By.ID, "usage-title"), "per hour"))
    shot(driver, "10-usage")
