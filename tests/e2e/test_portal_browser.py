"""The portal in a real browser: headless Chromium (Debian ``chromium`` and ``chromium-driver``,
which ``.ci/run`` installs) driven by Selenium against a real ``yushan serve --embedded``.

Alice (a member of lab-a) signs in with her token, submits a job through the form (a refused
one first: the error is shown next to the field), watches it reach ``running`` on the embedded
cluster without reloading the page, reads its log, cancels another job, gets a 404 page for a
job and the tenant of lab-b, and signs out. The platform admin then opens the cluster, edits a
quota through the form, and reads the fair-share tree and the audit log. Every page is audited
with axe-core (vendored in ``api/ui/static``): no serious or critical violation. Screenshots of
each page, at laptop and phone sizes, go to ``var/screenshots/``.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from tests.e2e.conftest import ROOT, Server, serve

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("serve")]

SCREENSHOTS = ROOT / "var" / "screenshots"
AXE = ROOT / "api" / "ui" / "static" / "axe-4.14.1.min.js"
LAPTOP = (1366, 900)
PHONE = (390, 844)


@pytest.fixture(scope="module")
def portal_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # A simulated job runs 3 x its default 60 s: still running when the admin looks at the
    # cluster at the end of the test.
    with serve(tmp_path_factory.mktemp("portal"), time_scale=3.0) as started:
        yield started


@pytest.fixture(scope="module")
def people(portal_server: Server, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """lab-a with alice (member), lab-b with bob and a job of his; their tokens and bob's job."""
    server = portal_server
    server.cli(
        "flavors", "create", "h100", "--label", "nvidia.com/gpu.product=NVIDIA-H100-80GB-HBM3"
    )
    server.cli("cohorts", "create", "academic")
    tokens = {}
    for tenant, user in (("lab-a", "alice"), ("lab-b", "bob")):
        server.cli("tenants", "create", tenant, "--kind", "academic", "--cohort", "academic")
        server.cli("quota", "set", tenant, str(ROOT / "examples" / "quota.yaml"))
        server.cli("users", "create", user)
        server.cli("members", "add", tenant, user, "--role", "member")
        tokens[user] = server.cli("tokens", "create", user).stdout.strip()
    job = tmp_path_factory.mktemp("job") / "job.json"
    job.write_text(
        json.dumps({"tenant": "lab-b", "name": "secret", "image": "x", "flavor": "h100", "gpus": 1})
    )
    bob = Server(server.url, tokens["bob"], server.workdir, server.process)
    return {**tokens, "bob_job": bob.cli("submit", str(job)).stdout.strip()}


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--lang=en"):
        options.add_argument(argument)
    service = Service(executable_path=shutil.which("chromedriver") or "/usr/bin/chromedriver")
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_window_size(*LAPTOP)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


def wait(browser: WebDriver, condition: Any, timeout: float = 30) -> Any:
    """Until ``condition`` holds; an element htmx replaced meanwhile is looked up again."""
    ignored = (NoSuchElementException, StaleElementReferenceException)
    return WebDriverWait(browser, timeout, 0.2, ignored).until(condition)


def axe_violations(browser: WebDriver) -> list[str]:
    """Serious and critical axe-core violations of the page as it is now."""
    browser.execute_script(AXE.read_text())
    result = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document).then(r => done(r.violations), e => done([{id: String(e)}]));"
    )
    return [
        f"{v['id']} ({v.get('impact')}): {[n['target'] for n in v.get('nodes', [])][:3]}"
        for v in result
        if v.get("impact") in ("serious", "critical") or "impact" not in v
    ]


def check_page(browser: WebDriver, name: str, *, phone: bool = False) -> None:
    """Screenshot (laptop, and phone when asked) and the accessibility audit."""
    browser.save_screenshot(str(SCREENSHOTS / f"portal-{name}.png"))
    assert axe_violations(browser) == [], name
    if phone:
        browser.set_window_size(*PHONE)
        browser.save_screenshot(str(SCREENSHOTS / f"portal-{name}-phone.png"))
        assert axe_violations(browser) == [], f"{name} (phone)"
        width = browser.execute_script("return document.documentElement.scrollWidth")
        assert width <= PHONE[0], f"{name} scrolls sideways on a phone ({width}px)"
        browser.set_window_size(*LAPTOP)


def status_of(browser: WebDriver) -> str:
    return str(browser.find_element(By.CSS_SELECTOR, "#job-status .badge").text)


def sign_in(browser: WebDriver, url: str, token: str) -> None:
    browser.get(f"{url}/ui/")
    wait(browser, lambda b: b.current_url.endswith("/ui/sign-in"))
    field = browser.find_element(By.ID, "token")
    field.send_keys(token, Keys.ENTER)  # the keyboard alone signs in
    wait(browser, lambda b: b.current_url.endswith("/ui/jobs"))


def submit_form(browser: WebDriver, url: str, **fields: str) -> None:
    browser.get(f"{url}/ui/jobs/new")
    for name, value in fields.items():
        element = browser.find_element(By.ID, name)
        if element.tag_name == "select":
            element.find_element(By.CSS_SELECTOR, f"option[value='{value}']").click()
        else:
            element.clear()
            element.send_keys(value)
    browser.find_element(By.CSS_SELECTOR, "main form button[type=submit]").click()


def test_a_researcher_and_an_admin_use_the_portal(
    portal_server: Server, people: dict[str, str], browser: WebDriver
) -> None:
    url = portal_server.url
    browser.get(f"{url}/ui/jobs")
    assert browser.current_url.endswith("/ui/sign-in")
    check_page(browser, "sign-in", phone=True)
    sign_in(browser, url, people["alice"])
    check_page(browser, "jobs-empty")

    # A refused submission shows the API's reason next to the field, and stores nothing.
    submit_form(browser, url, name="too-big", image="pytorch", flavor="h100", gpus="60")
    error = wait(browser, lambda b: b.find_element(By.ID, "gpus-error"))
    assert "may use at most 24" in error.text
    assert browser.find_element(By.ID, "gpus").get_attribute("aria-invalid") == "true"
    check_page(browser, "submit-error", phone=True)

    submit_form(browser, url, name="resnet", image="pytorch", command="python train.py", gpus="4")
    wait(browser, lambda b: "/ui/jobs/" in b.current_url and "new" not in b.current_url)
    job_url = browser.current_url
    # The page refreshes itself (htmx): the job reaches running without a reload.
    wait(browser, lambda b: status_of(b) == "running", 60)
    assert browser.current_url == job_url
    wait(browser, lambda b: "running" in b.find_element(By.ID, "events").text)  # the timeline
    check_page(browser, "job-running", phone=True)

    browser.find_element(By.ID, "follow").click()
    browser.find_element(By.CSS_SELECTOR, "#logs-heading ~ form button").click()
    log = wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, "pre.log"))
    assert "sim: container started on node h100-" in log.text
    assert "follow=true" in browser.current_url
    check_page(browser, "job-logs")

    # Another job, cancelled from its page.
    submit_form(browser, url, name="to-cancel", image="pytorch", gpus="1")
    wait(browser, lambda b: b.find_elements(By.CSS_SELECTOR, "button.danger"))
    other_url = browser.current_url
    assert other_url != job_url
    browser.find_element(By.CSS_SELECTOR, "button.danger").click()
    wait(browser, lambda b: status_of(b) == "cancelled")
    assert not browser.find_elements(By.CSS_SELECTOR, "button.danger")

    browser.get(f"{url}/ui/jobs")
    rows = browser.find_elements(By.CSS_SELECTOR, "#jobs-table tbody tr")
    assert [r.find_element(By.TAG_NAME, "a").text for r in rows] == ["to-cancel", "resnet"]
    check_page(browser, "jobs", phone=True)
    browser.get(f"{url}/ui/tenants/lab-a")
    # loaded by htmx after the page; resnet runs
    wait(browser, lambda b: "No waiting jobs." in b.find_element(By.ID, "queue").text)
    assert browser.find_elements(By.CSS_SELECTOR, "figure.bar svg")
    check_page(browser, "tenant", phone=True)
    browser.find_element(By.LINK_TEXT, "Wallet and statement").click()
    wait(browser, lambda b: b.current_url.endswith("/ui/tenants/lab-a/wallet"))
    assert browser.find_element(By.CSS_SELECTOR, "#spend-heading + figure svg polyline")
    check_page(browser, "wallet", phone=True)

    # Another tenant's job and the tenant itself do not exist for alice.
    for path in (f"/ui/jobs/{people['bob_job']}", "/ui/tenants/lab-b", "/ui/tenants/lab-b/wallet"):
        browser.get(f"{url}{path}")
        assert browser.find_element(By.TAG_NAME, "h1").text == "Not found"
        assert "secret" not in browser.page_source
    check_page(browser, "not-found")
    browser.get(f"{url}/ui/admin/cluster")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Not allowed"

    browser.find_element(By.CSS_SELECTOR, ".signout button").click()
    wait(browser, lambda b: b.current_url.endswith("/ui/sign-in"))
    browser.get(job_url)
    assert browser.current_url.endswith("/ui/sign-in")

    # The platform admin: the cluster with lab-a's GPUs, a quota edit, share, audit.
    sign_in(browser, url, portal_server.token)
    browser.get(f"{url}/ui/admin/cluster")
    held = browser.find_elements(By.XPATH, "//*[local-name()='title'][contains(., ': lab-a')]")
    squares = [t.find_elements(By.XPATH, "../*[local-name()='rect']") for t in held]
    assert sum(len(group) for group in squares) == 4  # the running job's 4 GPUs
    check_page(browser, "cluster", phone=True)
    browser.get(f"{url}/ui/admin/tenants")
    check_page(browser, "admin-tenants")
    browser.find_element(By.CSS_SELECTOR, "a[href='/ui/admin/quota/tenant/lab-b']").click()
    nominal = browser.find_element(By.ID, "h100-gpu-nominal")
    assert nominal.get_attribute("value") == "16"
    nominal.clear()
    nominal.send_keys("many")
    browser.find_element(By.CSS_SELECTOR, "main form button[type=submit]").click()
    assert (
        "whole number"
        in wait(browser, lambda b: b.find_element(By.ID, "h100-gpu-nominal-error")).text
    )
    check_page(browser, "quota-form")
    nominal = browser.find_element(By.ID, "h100-gpu-nominal")
    nominal.clear()
    nominal.send_keys("12")
    browser.find_element(By.CSS_SELECTOR, "main form button[type=submit]").click()
    wait(browser, lambda b: b.current_url.endswith("/ui/admin/tenants"))
    assert "h100: 12 / 8" in browser.find_element(By.TAG_NAME, "main").text
    browser.get(f"{url}/ui/admin/share")
    check_page(browser, "share")
    browser.get(f"{url}/ui/admin/audit?action=tenant.quota")
    actions = browser.find_elements(By.CSS_SELECTOR, "tbody tr td:nth-child(3)")
    targets = browser.find_elements(By.CSS_SELECTOR, "tbody tr td:nth-child(4)")
    assert [a.text for a in actions] == ["tenant.quota.set"] * 3
    assert targets[0].text == "lab-b"
    check_page(browser, "audit")
