"""The portal (``/ui/``) in process, on SQLite and PostgreSQL: sign-in and its cookie, CSRF,
the API's roles and tenant isolation, the submit and quota forms (what they store, and that a
refused form stores nothing), and the pages each role may open.

The browser test (``tests/e2e/test_portal_browser.py``) drives the same pages in Chromium.
"""

from __future__ import annotations

import html
import re
import time
from dataclasses import dataclass

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import create_app
from api.settings import ApiSettings
from api.ui.routers import wallet as wallet_page
from api.ui.session import SESSION_COOKIE, Signer
from tests.api.builders import ApiDriver, a_job
from tests.api.conftest import ADMIN_TOKEN
from tests.api.test_accounting import T0, put_prices, run_job, topup

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Browser:
    """A cookie-keeping client, like a browser tab (redirects are not followed)."""

    client: TestClient

    def get(self, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
        response: httpx.Response = self.client.get(path, headers=headers, follow_redirects=False)
        return response

    def post(self, path: str, data: dict[str, str]) -> httpx.Response:
        response: httpx.Response = self.client.post(path, data=data, follow_redirects=False)
        return response

    def csrf(self, path: str = "/ui/jobs/new") -> str:
        found = CSRF.search(self.get(path).text)
        assert found is not None
        return found.group(1)

    def sign_in(self, token: str) -> httpx.Response:
        nonce = self.csrf("/ui/sign-in")
        return self.post("/ui/sign-in", {"csrf": nonce, "token": token})


def browser_for(client: TestClient, token: str) -> Browser:
    tab = Browser(TestClient(client.app, base_url="http://testserver"))
    assert tab.sign_in(token).status_code == 303
    return tab


@pytest.fixture
def platform(api: ApiDriver) -> dict[str, ApiDriver]:
    api.setup_platform()
    return {
        "admin": api,
        "alice": api.user_with_token("alice", "lab-a"),
        "carol": api.user_with_token("carol", "lab-a"),
        "viewer": api.user_with_token("victor", "lab-a", role="viewer"),
        "bob": api.user_with_token("bob", "lab-b"),
    }


def submit(driver: ApiDriver, tenant: str, name: str = "job") -> str:
    job_id: str = driver.ok(
        driver.post("/v1/jobs", a_job().in_tenant(tenant).with_(name=name).body()), 201
    )["id"]
    return job_id


def test_sign_in_sets_a_strict_httponly_cookie_that_does_not_carry_the_token(
    client: TestClient, platform: dict[str, ApiDriver]
) -> None:
    tab = Browser(TestClient(client.app))
    assert tab.get("/ui/jobs").headers["location"] == "/ui/sign-in"
    response = tab.sign_in(platform["alice"].token)
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/jobs"
    cookie = next(
        c for c in response.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE)
    )
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Path=/ui" in cookie
    assert "Secure" not in cookie  # plain http here
    assert platform["alice"].token not in cookie
    assert platform["alice"].token.split("_", 2)[2] not in cookie  # the secret after ysh_<id>_
    page = tab.get("/ui/jobs")
    assert page.status_code == 200
    assert "alice" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]


def test_the_cookie_is_secure_under_tls(client: TestClient, platform: dict[str, ApiDriver]) -> None:
    tab = Browser(TestClient(client.app, base_url="https://testserver"))
    cookie = next(
        c
        for c in tab.sign_in(platform["alice"].token).headers.get_list("set-cookie")
        if c.startswith(SESSION_COOKIE)
    )
    assert "Secure" in cookie


@pytest.mark.parametrize(
    ("token", "with_nonce", "status"),
    [("nonsense", True, 401), ("alice", False, 403), ("", True, 401)],
)
def test_a_refused_sign_in_sets_no_session(
    client: TestClient, platform: dict[str, ApiDriver], token: str, with_nonce: bool, status: int
) -> None:
    tab = Browser(TestClient(client.app))
    nonce = tab.csrf("/ui/sign-in") if with_nonce else "forged"
    secret = platform[token].token if token in platform else token
    response = tab.post("/ui/sign-in", {"csrf": nonce, "token": secret})
    assert response.status_code == status
    assert not any(
        c.startswith(f"{SESSION_COOKIE}=") and "Max-Age=0" not in c
        for c in response.headers.get_list("set-cookie")
    )
    assert tab.get("/ui/jobs").status_code == 303


def test_revoking_the_token_ends_the_session_and_sign_out_clears_it(
    client: TestClient, platform: dict[str, ApiDriver]
) -> None:
    admin = platform["admin"]
    alice = admin.user_with_token("alice2", "lab-a")
    tab = browser_for(client, alice.token)
    assert tab.get("/ui/jobs").status_code == 200
    token_id = admin.ok(admin.get("/v1/users/alice2/tokens"))[0]["id"]
    admin.ok(admin.request("DELETE", f"/v1/users/alice2/tokens/{token_id}"))
    assert tab.get("/ui/jobs").headers["location"] == "/ui/sign-in"

    other = browser_for(client, platform["alice"].token)
    response = other.post("/ui/sign-out", {"csrf": other.csrf()})
    assert response.headers["location"] == "/ui/sign-in"
    assert any(
        c.startswith(f"{SESSION_COOKIE}=") and "Max-Age=0" in c
        for c in response.headers.get_list("set-cookie")
    )
    assert other.get("/ui/jobs").status_code == 303


def test_a_tampered_or_expired_cookie_is_no_session(
    client: TestClient, platform: dict[str, ApiDriver]
) -> None:
    tab = browser_for(client, platform["alice"].token)
    value = tab.client.cookies[SESSION_COOKIE]
    payload, _, mac = value.partition(".")
    tab.client.cookies.set(SESSION_COOKIE, payload + "x." + mac, path="/ui")
    assert tab.get("/ui/jobs").status_code == 303
    clock = [1000.0]
    signer = Signer(b"k" * 32, clock=lambda: clock[0])
    signed = signer.sign("session", {"h": "abc"})
    assert signer.verify("session", signed, 60) is not None
    assert signer.verify("sign-in", signed, 60) is None  # another purpose
    clock[0] += 61
    assert signer.verify("session", signed, 60) is None


def test_every_post_needs_the_sessions_csrf_token(
    client: TestClient, platform: dict[str, ApiDriver]
) -> None:
    alice = platform["alice"]
    job_id = submit(alice, "lab-a")
    tab = browser_for(client, alice.token)
    for data in ({}, {"csrf": "forged"}, {"csrf": browser_for(client, alice.token).csrf()}):
        assert tab.post(f"/ui/jobs/{job_id}/cancel", data).status_code == 403
        assert tab.post("/ui/sign-out", data).status_code == 403
    assert alice.ok(alice.get(f"/v1/jobs/{job_id}"))["status"] == "queued"
    assert tab.post(f"/ui/jobs/{job_id}/cancel", {"csrf": tab.csrf()}).status_code == 303
    assert alice.ok(alice.get(f"/v1/jobs/{job_id}"))["status"] == "cancelled"


@pytest.mark.parametrize(
    ("who", "path", "status"),
    [
        ("alice", "/ui/jobs/{bob_job}", 404),
        ("alice", "/ui/tenants/lab-b", 404),
        ("alice", "/ui/jobs?tenant=lab-b", 404),
        ("alice", "/ui/jobs/{bob_job}/logs", 404),
        ("alice", "/ui/tenants/lab-a", 200),
        ("alice", "/ui/tenants/lab-a/queue", 200),
        ("alice", "/ui/tenants/lab-b/queue", 404),
        ("alice", "/ui/tenants/lab-a/wallet", 200),
        ("viewer", "/ui/tenants/lab-a/wallet", 200),
        ("alice", "/ui/tenants/lab-b/wallet", 404),
        ("alice", "/ui/tenants/lab-b/wallet?month=2026-11", 404),
        ("admin", "/ui/tenants/lab-b/wallet", 200),
        ("admin", "/ui/tenants/nope/wallet", 404),
        ("admin", "/ui/tenants/lab-a/wallet?month=2026-13", 422),
        ("admin", "/ui/tenants/lab-a/wallet?month=november", 422),
        ("alice", "/ui/jobs/{alice_job}", 200),
        ("viewer", "/ui/jobs/{alice_job}", 200),
        ("alice", "/ui/admin/cluster", 403),
        ("alice", "/ui/admin/tenants", 403),
        ("alice", "/ui/admin/share", 403),
        ("alice", "/ui/admin/audit", 403),
        ("alice", "/ui/admin/quota/tenant/lab-a", 403),
        ("admin", "/ui/jobs/{bob_job}", 200),
        ("admin", "/ui/tenants/lab-b", 200),
        ("admin", "/ui/admin/cluster", 200),
        ("admin", "/ui/admin/tenants", 200),
        ("admin", "/ui/admin/share", 200),
        ("admin", "/ui/admin/audit?action=tenant", 200),
        ("admin", "/ui/admin/quota/tenant/lab-a", 200),
        ("admin", "/ui/admin/quota/cohort/academic", 200),
        ("admin", "/ui/admin/quota/tenant/nope", 404),
        ("admin", "/ui/jobs/nope", 404),
    ],
)
def test_pages_follow_the_apis_roles_and_isolation(
    client: TestClient, platform: dict[str, ApiDriver], who: str, path: str, status: int
) -> None:
    ids = {
        "alice_job": submit(platform["alice"], "lab-a", "mine"),
        "bob_job": submit(platform["bob"], "lab-b", "secret-job"),
    }
    tab = browser_for(client, platform[who].token)
    response = tab.get(path.format(**ids))
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")
    if status == 404:
        assert "secret-job" not in response.text


def test_the_job_list_shows_only_the_callers_tenants(
    client: TestClient, platform: dict[str, ApiDriver]
) -> None:
    submit(platform["alice"], "lab-a", "alices-job")
    submit(platform["bob"], "lab-b", "bobs-job")
    submit(platform["carol"], "lab-a", "carols-job")
    tab = browser_for(client, platform["alice"].token)
    page = tab.get("/ui/jobs").text
    assert "alices-job" in page
    assert "carols-job" in page  # the same tenant
    assert "bobs-job" not in page
    mine = tab.get("/ui/jobs?mine=true").text
    assert "alices-job" in mine
    assert "carols-job" not in mine
    admin_page = browser_for(client, platform["admin"].token).get("/ui/jobs?status=queued").text
    assert "alices-job" in admin_page
    assert "bobs-job" in admin_page


def test_cancel_follows_the_apis_roles(client: TestClient, platform: dict[str, ApiDriver]) -> None:
    job_id = submit(platform["alice"], "lab-a")
    for who in ("carol", "viewer"):  # another member; a viewer
        tab = browser_for(client, platform[who].token)
        assert "Cancel job" not in tab.get(f"/ui/jobs/{job_id}").text
        assert tab.post(f"/ui/jobs/{job_id}/cancel", {"csrf": tab.csrf()}).status_code == 403
    alice = platform["alice"]
    assert alice.ok(alice.get(f"/v1/jobs/{job_id}"))["status"] == "queued"


FORM = {
    "tenant": "lab-a",
    "name": "from-form",
    "image": "pytorch",
    "flavor": "h100",
    "gpus": "2",
    "workers": "1",
    "command": "python train.py --lr 0.1",
    "priority": "high",
}


def test_the_submit_form_stores_what_the_api_stores(
    client: TestClient, platform: dict[str, ApiDriver]
) -> None:
    alice = platform["alice"]
    tab = browser_for(client, alice.token)
    response = tab.post("/ui/jobs", {**FORM, "max_runtime_seconds": "3600", "csrf": tab.csrf()})
    assert response.status_code == 303
    job_id = response.headers["location"].removeprefix("/ui/jobs/")
    job = alice.ok(alice.get(f"/v1/jobs/{job_id}"))
    assert (job["user"], job["name"], job["gpus"], job["priority"]) == (
        "alice",
        "from-form",
        2,
        "high",
    )
    assert job["command"] == ["python", "train.py", "--lr", "0.1"]
    assert job["max_runtime_seconds"] == 3600
    page = tab.get(f"/ui/jobs/{job_id}").text
    assert "queued" in page
    assert "has not started yet" in page  # the log panel says why there is no log


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"gpus": "0"}, "gpus", "must be"),
        ({"gpus": "many"}, "gpus", "whole number"),
        ({"gpus": "65"}, "gpus", "must be <= 64"),
        ({"name": ""}, "name", "must not be empty"),
        ({"command": "echo 'unclosed"}, "command", "cannot split"),
        ({"tenant": "lab-b"}, "form", "not found"),
        ({"flavor": "v100"}, "flavor", "v100"),
    ],
)
def test_a_refused_submission_shows_the_reason_by_its_field_and_stores_nothing(
    client: TestClient,
    platform: dict[str, ApiDriver],
    change: dict[str, str],
    field: str,
    message: str,
) -> None:
    alice = platform["alice"]
    tab = browser_for(client, alice.token)
    response = tab.post("/ui/jobs", {**FORM, **change, "csrf": tab.csrf()})
    assert response.status_code in (404, 422)
    if field == "form":
        assert message in response.text
    else:
        error = re.search(rf'id="{field}-error">([^<]*)<', response.text)
        assert error is not None, response.text
        assert message in html.unescape(error.group(1))
        assert f'id="{field}" name="{field}"' in response.text or f'name="{field}"' in response.text
        assert 'aria-invalid="true"' in response.text
    assert alice.ok(alice.get("/v1/jobs"))["items"] == []


def test_a_viewer_is_offered_no_tenant_to_submit_to(
    client: TestClient, platform: dict[str, ApiDriver]
) -> None:
    tab = browser_for(client, platform["viewer"].token)
    assert '<option value="lab-a"' not in tab.get("/ui/jobs/new").text
    assert tab.post("/ui/jobs", {**FORM, "csrf": tab.csrf()}).status_code == 403


def test_the_quota_form_sets_the_quota_through_the_api_and_is_audited(
    client: TestClient, platform: dict[str, ApiDriver]
) -> None:
    admin = platform["admin"]
    tab = browser_for(client, admin.token)
    form = tab.get("/ui/admin/quota/tenant/lab-a").text
    assert 'name="h100.gpu.nominal" value="16"' in form
    data = {
        "csrf": tab.csrf(),
        "h100.gpu.nominal": "12",
        "h100.gpu.borrowing_limit": "4",
        "h100.cpu.nominal": "48",
        "h100.memory.nominal": "",
    }
    assert tab.post("/ui/admin/quota/tenant/lab-a", data).status_code == 303
    quota = admin.ok(admin.get("/v1/tenants/lab-a/quota"))["flavors"]["h100"]
    assert quota["gpu"] == {"nominal": 12, "borrowing_limit": 4, "lending_limit": None}
    assert quota["cpu"]["nominal"] == "48"
    assert "memory" not in quota
    entries = admin.ok(admin.get("/v1/audit?action=tenant.quota.set"))["items"]
    assert entries[0]["actor"] == "admin"
    assert entries[0]["target"] == "lab-a"
    audit_page = tab.get("/ui/admin/audit?action=tenant.quota").text
    assert "tenant.quota.set" in audit_page


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("h100.gpu.nominal", "-1", ">= 0"), ("h100.cpu.nominal", "lots", "not a Kubernetes quantity")],
)
def test_a_refused_quota_changes_nothing(
    client: TestClient, platform: dict[str, ApiDriver], field: str, value: str, message: str
) -> None:
    admin = platform["admin"]
    tab = browser_for(client, admin.token)
    data = {"csrf": tab.csrf(), "h100.gpu.nominal": "8", field: value}
    response = tab.post("/ui/admin/quota/tenant/lab-a", data)
    assert response.status_code == 422
    error = re.search(rf'id="{field.replace(".", "-")}-error">([^<]*)<', response.text)
    assert error is not None, response.text
    assert message in html.unescape(error.group(1))
    quota = admin.ok(admin.get("/v1/tenants/lab-a/quota"))["flavors"]["h100"]
    assert quota["gpu"]["nominal"] == 16
    assert admin.ok(admin.get("/v1/audit?action=tenant.quota.set"))["items"] == []


def test_an_invalid_audit_filter_is_shown_by_its_field(
    client: TestClient, platform: dict[str, ApiDriver]
) -> None:
    tab = browser_for(client, platform["admin"].token)
    response = tab.get("/ui/admin/audit?since=2026-13-45")
    assert response.status_code == 422
    assert 'id="since-error"' in response.text


def test_live_refresh_answers_fragments_and_stops_once_the_job_is_final(
    client: TestClient, platform: dict[str, ApiDriver]
) -> None:
    alice = platform["alice"]
    job_id = submit(alice, "lab-a", "live")
    tab = browser_for(client, alice.token)
    live = tab.get(f"/ui/jobs/{job_id}", headers={"HX-Request": "true"})
    assert live.status_code == 200
    assert "<html" not in live.text
    assert 'id="events" class="timeline" hx-swap-oob="true"' in live.text
    alice.ok(alice.post(f"/v1/jobs/{job_id}/cancel"))
    assert tab.get(f"/ui/jobs/{job_id}", headers={"HX-Request": "true"}).status_code == 286
    rows = tab.get("/ui/jobs", headers={"HX-Request": "true"})
    assert "<table>" in rows.text
    assert "<html" not in rows.text
    signed_out = Browser(TestClient(client.app)).get("/ui/jobs", headers={"HX-Request": "true"})
    assert signed_out.headers["hx-redirect"] == "/ui/sign-in"


def test_the_tenant_queue_shows_waiting_jobs_in_order_with_their_factors(
    client: TestClient, platform: dict[str, ApiDriver]
) -> None:
    alice = platform["alice"]
    first, second = submit(alice, "lab-a", "first"), submit(alice, "lab-a", "second")
    tab = browser_for(client, alice.token)
    assert 'hx-get="/ui/tenants/lab-a/queue"' in tab.get("/ui/tenants/lab-a").text
    fragment = tab.get("/ui/tenants/lab-a/queue", headers={"HX-Request": "true"}).text
    assert "<html" not in fragment
    assert fragment.index(f"/ui/jobs/{first}") < fragment.index(f"/ui/jobs/{second}")
    factors = alice.ok(alice.get("/v1/tenants/lab-a/queue"))[0]["factors"]
    for factor in factors:
        assert f'<th scope="col">{factor}</th>' in fragment
    assert "<html" in tab.get("/ui/tenants/lab-a/queue").text  # a page of its own without htmx


def _app(database_url: str, engine: Engine, **settings: object) -> TestClient:
    configured = ApiSettings.model_validate({"database_url": database_url, **settings})
    return TestClient(create_app(configured, engine))


@pytest.mark.parametrize(
    ("first", "second", "shared"),
    [
        ({"session_secret": "s1"}, {"session_secret": "s1"}, True),
        ({"session_secret": "s1"}, {"session_secret": "s2"}, False),
        ({"bootstrap_token": ADMIN_TOKEN}, {"bootstrap_token": ADMIN_TOKEN}, True),
        ({"bootstrap_token": ADMIN_TOKEN}, {"bootstrap_token": "ysh_other_0123456789"}, False),
        ({}, {}, False),  # a random key per process
    ],
)
def test_replicas_with_the_same_key_share_sign_ins(
    database_url: str,
    engine: Engine,
    platform: dict[str, ApiDriver],
    first: dict[str, str],
    second: dict[str, str],
    shared: bool,
) -> None:
    one = Browser(_app(database_url, engine, **first))
    assert one.sign_in(platform["alice"].token).status_code == 303
    other = Browser(_app(database_url, engine, **second))
    other.client.cookies.set(SESSION_COOKIE, one.client.cookies[SESSION_COOKIE], path="/ui")
    assert other.get("/ui/jobs").status_code == (200 if shared else 303)


def test_the_session_lasts_the_configured_time(
    database_url: str, engine: Engine, platform: dict[str, ApiDriver]
) -> None:
    tab = Browser(_app(database_url, engine, session_max_age_seconds=600))
    cookie = next(
        c
        for c in tab.sign_in(platform["alice"].token).headers.get_list("set-cookie")
        if c.startswith(SESSION_COOKIE)
    )
    assert "Max-Age=600" in cookie


def cell(page: str, css_class: str) -> str:
    found = re.search(rf'<td class="{css_class}">([^<]*)</td>', page)
    assert found is not None, css_class
    return found.group(1)


def test_the_wallet_page_shows_the_statement_the_api_answers_and_the_wallet(
    client: TestClient, platform: dict[str, ApiDriver], engine: Engine
) -> None:
    admin, alice = platform["admin"], platform["alice"]
    put_prices(admin)
    topup(admin, "lab-a", "100")
    admin.ok(admin.request("PUT", "/v1/tenants/lab-a/wallet/members/carol", json={"budget": "7"}))
    first, second = submit(alice, "lab-a", "short"), submit(alice, "lab-a", "long")
    run_job(engine, first, T0, T0 + 189)  # 4.305 credits at 82 per GPU-hour
    run_job(engine, second, T0 + 600, T0 + 600 + 1800)  # 41
    tab = browser_for(client, alice.token)
    page = tab.get("/ui/tenants/lab-a/wallet?month=2026-11")
    assert page.status_code == 200, page.text
    api_statement = alice.ok(alice.get("/v1/usage/statements/lab-a", params={"month": "2026-11"}))
    assert [line["job_id"] for line in api_statement["lines"]] == [first, second]
    assert api_statement["jobs"] == 2
    assert cell(page.text, "total-cost") == api_statement["cost"] == "45.305"
    assert cell(page.text, "total-net") == api_statement["net"] == "45.305"
    assert cell(page.text, "total-gpu-hours") == str(api_statement["gpu_hours"])
    assert page.text.index(first) < page.text.index(second)
    assert "Wallet charges this month: 45.305" in page.text
    wallet = alice.ok(alice.get("/v1/tenants/lab-a/wallet"))
    assert wallet["balance"] == "54.695"
    assert "<dd>54.695 credits</dd>" in page.text
    assert "none left" not in page.text
    admin.ok(
        admin.post(
            "/v1/tenants/lab-a/wallet/transactions", {"kind": "adjustment", "amount": "-54.695"}
        ),
        201,
    )
    assert "none left" in tab.get("/ui/tenants/lab-a/wallet").text
    assert "<td>carol</td><td>7.000</td>" in page.text  # the member budget
    assert "<td>topup</td><td>100.000</td>" in page.text  # a recent transaction
    october = tab.get("/ui/tenants/lab-a/wallet?month=2026-10").text
    assert "No usage in 2026-10." in october
    assert cell(october, "total-cost") == "0.000"
    assert 'href="/ui/tenants/lab-a/wallet"' in tab.get("/ui/jobs").text  # in the navigation
    job_page = tab.get(f"/ui/jobs/{first}").text
    assert "<dt>Cost so far</dt><dd>4.305 credits</dd>" in job_page
    assert "none (no time limit)" in job_page


def test_the_spend_chart_sums_the_last_30_days(
    client: TestClient, platform: dict[str, ApiDriver], engine: Engine
) -> None:
    admin, alice = platform["admin"], platform["alice"]
    put_prices(admin)
    recent, old = submit(alice, "lab-a", "recent"), submit(alice, "lab-a", "old")
    now = time.time()
    run_job(engine, recent, now - 3 * 3600, now - 3 * 3600 + 189)
    run_job(engine, old, now - 40 * 86400, now - 40 * 86400 + 1800)  # before the window
    page = browser_for(client, alice.token).get("/ui/tenants/lab-a/wallet").text
    assert "4.305 credits in all, at most 4.305 in a day" in page
    assert "<polyline points=" in page
    assert "not metered" in page
    assert "none left" not in page  # an unmetered tenant is never refused for credit
    capped = a_job().in_tenant("lab-a").with_gpus(2).with_(max_runtime_seconds=1800).body()
    job = admin.ok(admin.post("/v1/jobs", capped), 201)
    shown = browser_for(client, alice.token).get(f"/ui/jobs/{job['id']}").text
    assert "<dd>82.000 credits (the time limit at today&#39;s price)</dd>" in shown


def test_a_long_statement_is_shown_in_pages_with_the_whole_months_totals(
    client: TestClient,
    platform: dict[str, ApiDriver],
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(wallet_page, "STATEMENT_LINES", 2)
    put_prices(platform["admin"])
    alice = platform["alice"]
    ids = [submit(alice, "lab-a", f"job-{i}") for i in range(3)]
    for i, job_id in enumerate(ids):
        run_job(engine, job_id, T0 + i * 1000, T0 + i * 1000 + 189)
    tab = browser_for(client, alice.token)
    first = tab.get("/ui/tenants/lab-a/wallet?month=2026-11").text
    second = tab.get("/ui/tenants/lab-a/wallet?month=2026-11&offset=2").text
    assert [job_id in first for job_id in ids] == [True, True, False]
    assert [job_id in second for job_id in ids] == [False, False, True]
    assert "offset=2" in first
    assert "Previous" not in first
    assert "offset=0" in second
    assert "Next" not in second
    assert cell(first, "total-cost") == cell(second, "total-cost") == "12.915"
