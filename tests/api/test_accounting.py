"""The accounting API through the in-process client on both backends: prices, wallets and
their roles, the 402 at submission (prepaid, postpaid credit limit, member budget), and the
usage report (JSON and CSV) and statement agreeing with the ledger."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from store import jobs, ledger
from store.db import session_factory, transaction
from store.jobstates import JobStatus
from tests.api.builders import ApiDriver, a_job
from tests.api.conftest import ADMIN_TOKEN

T0 = datetime(2026, 11, 3, 12, 0, tzinfo=UTC).timestamp()


@pytest.fixture
def api(client: TestClient) -> ApiDriver:
    driver = ApiDriver(client, ADMIN_TOKEN)
    driver.setup_platform(("lab-a",))
    for name, kind in (("acme", "industry"), ("moda", "government")):
        body = {
            "name": name,
            "kind": kind,
            "quota": {"flavors": {"h100": {"gpu": {"nominal": 16}}}},
        }
        driver.ok(driver.post("/v1/tenants", body), 201)
    return driver


def put_prices(api: ApiDriver, **extra: Any) -> Any:
    body = {
        "effective_from": "2026-01-01T00:00:00Z",
        "prices": [
            {"flavor": "h100", "tenant_kind": "academic", "gpu_hour": "82"},
            {"flavor": "h100", "tenant_kind": "industry", "gpu_hour": 120, "cpu_hour": "0.5"},
        ],
        **extra,
    }
    return api.request("PUT", "/v1/prices", json=body)


def topup(api: ApiDriver, tenant: str, amount: str, kind: str = "topup") -> Any:
    body = {"kind": kind, "amount": amount, "note": "grant"}
    return api.ok(api.post(f"/v1/tenants/{tenant}/wallet/transactions", body), 201)


def test_prices_are_set_by_admins_and_read_by_everyone(api: ApiDriver) -> None:
    listed = api.ok(put_prices(api))
    assert [(p["tenant_kind"], p["gpu_hour"], p["cpu_hour"]) for p in listed["prices"]] == [
        ("academic", "82.000", "0.000"),
        ("industry", "120.000", "0.500"),
    ]
    alice = api.user_with_token("alice", "lab-a")
    assert alice.put("/v1/prices", {"prices": []}).status_code in (403, 422)
    assert alice.ok(alice.get("/v1/prices"))["prices"] == listed["prices"]
    before = api.ok(api.get("/v1/prices", params={"at": "2025-06-01T00:00:00Z"}))
    assert before["prices"] == []


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ({"flavor": "a100", "tenant_kind": "academic", "gpu_hour": "1"}, "body.prices.0.flavor"),
        ({"flavor": "h100", "tenant_kind": "academic", "gpu_hour": "1.0000001"}, "gpu_hour"),
        ({"flavor": "h100", "tenant_kind": "academic", "gpu_hour": "-1"}, "gpu_hour"),
        ({"flavor": "h100", "tenant_kind": "army", "gpu_hour": "1"}, "tenant_kind"),
    ],
)
def test_bad_prices_are_refused_naming_the_field(
    api: ApiDriver, item: dict[str, str], field: str
) -> None:
    response = api.request("PUT", "/v1/prices", json={"prices": [item]})
    assert response.status_code == 422, response.text
    assert field in response.json()["errors"][0]["field"]
    assert api.ok(api.get("/v1/prices"))["prices"] == []


def test_wallet_top_ups_are_admin_only_and_transactions_sum_to_the_balance(
    api: ApiDriver,
) -> None:
    alice = api.user_with_token("alice", "lab-a", role="tenant-admin")
    assert alice.ok(alice.get("/v1/tenants/lab-a/wallet"))["metered"] is False
    refused = alice.post("/v1/tenants/lab-a/wallet/transactions", {"amount": "5"})
    assert refused.status_code == 403
    topup(api, "lab-a", "100.5")
    topup(api, "lab-a", "-0.25", kind="adjustment")
    wallet = alice.ok(alice.get("/v1/tenants/lab-a/wallet"))
    assert (wallet["metered"], wallet["balance"], wallet["billing"]) == (
        True,
        "100.250",
        "postpaid",
    )
    items = alice.ok(alice.get("/v1/tenants/lab-a/wallet/transactions"))["items"]
    assert [(t["kind"], t["amount"]) for t in items] == [
        ("adjustment", "-0.250"),
        ("topup", "100.500"),
    ]
    budget = alice.ok(
        alice.request("PUT", "/v1/tenants/lab-a/wallet/members/bob", json={"budget": 7})
    )
    assert budget == {"user": "bob", "budget": "7.000", "spent": "0.000", "remaining": "7.000"}
    bob = api.user_with_token("bob", "lab-a")
    assert (
        bob.request("PUT", "/v1/tenants/lab-a/wallet/members/bob", json={"budget": 9}).status_code
        == 403
    )
    assert (
        api.get(
            "/v1/tenants/acme/wallet", headers={"Authorization": f"Bearer {bob.token}"}
        ).status_code
        == 404
    )


def test_a_prepaid_tenant_cannot_have_a_credit_limit(api: ApiDriver) -> None:
    response = api.request("PATCH", "/v1/tenants/acme/wallet", json={"credit_limit": "10"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "body.credit_limit"
    assert api.ok(api.get("/v1/tenants/acme/wallet"))["metered"] is False


def submit(api: ApiDriver, tenant: str) -> Any:
    return api.post("/v1/jobs", a_job().in_tenant(tenant).body())


@pytest.mark.parametrize(
    ("tenant", "policy", "moves", "status", "balance"),
    [
        ("acme", {}, [], 402, "0.000"),  # prepaid, empty wallet
        ("acme", {}, [("topup", "1")], 201, None),
        ("acme", {}, [("topup", "1"), ("adjustment", "-1")], 402, "0.000"),
        ("moda", {"credit_limit": "50"}, [], 201, None),  # postpaid: uses first
        ("moda", {"credit_limit": "50"}, [("adjustment", "-49.999")], 201, None),
        ("moda", {"credit_limit": "50"}, [("adjustment", "-50")], 402, "-50.000"),
        ("lab-a", {"credit_limit": "5"}, [("adjustment", "-6")], 402, "-6.000"),
    ],
)
def test_submission_is_refused_with_402_naming_the_balance(
    api: ApiDriver,
    tenant: str,
    policy: dict[str, str],
    moves: list[tuple[str, str]],
    status: int,
    balance: str | None,
) -> None:
    api.ok(api.request("PATCH", f"/v1/tenants/{tenant}/wallet", json=policy))
    for kind, amount in moves:
        topup(api, tenant, amount, kind)
    response = submit(api, tenant)
    assert response.status_code == status, response.text
    if status == 402:
        problem = response.json()
        assert response.headers["content-type"].startswith("application/problem+json")
        assert problem["balance"] == balance
        assert problem["errors"][0]["field"] == "wallet.balance"
        assert balance in problem["detail"]
        assert api.ok(api.get("/v1/jobs"))["items"] == []


def test_a_member_over_budget_is_refused_but_others_are_not(api: ApiDriver) -> None:
    topup(api, "lab-a", "100")
    alice = api.user_with_token("alice", "lab-a")
    api.user_with_token("bob", "lab-a")
    api.ok(api.request("PUT", "/v1/tenants/lab-a/wallet/members/alice", json={"budget": "0"}))
    refused = alice.post("/v1/jobs", a_job().body())
    assert refused.status_code == 402
    assert refused.json()["errors"][0]["field"] == "member_budget.balance"
    assert refused.json()["balance"] == "0.000"
    api.ok(api.request("PUT", "/v1/tenants/lab-a/wallet/members/alice", json={"budget": "1"}))
    alice.ok(alice.post("/v1/jobs", a_job().body()), 201)


def run_job(engine: Engine, job_id: str, start: float, end: float) -> None:
    """Run a submitted job from ``start`` to ``end`` (epoch seconds) as the loop accrues."""
    sessions = session_factory(engine)
    with transaction(sessions) as session:
        job = jobs.get(session, job_id)
        job.placement = ["n0"]
        began = datetime.fromtimestamp(start, UTC)
        jobs.transition(session, job, JobStatus.ADMITTED, "Admitted", at=began)
        jobs.transition(session, job, JobStatus.RUNNING, "Running", at=began)
        ledger.accrue(session, [ledger.Attempt(job, 0)], start)
    with transaction(sessions) as session:
        job = jobs.get(session, job_id)
        ended = datetime.fromtimestamp(end, UTC)
        jobs.transition(session, job, JobStatus.SUCCEEDED, "Succeeded", at=ended)
        ledger.accrue(session, [ledger.Attempt(job, 0)], end)


def test_usage_report_csv_and_statement_agree_with_the_ledger(
    api: ApiDriver, engine: Engine
) -> None:
    put_prices(api)
    topup(api, "acme", "1000")
    alice = api.user_with_token("alice", "lab-a")
    first = alice.ok(alice.post("/v1/jobs", a_job().body()), 201)["id"]
    second = api.ok(submit(api, "acme"), 201)["id"]
    run_job(engine, first, T0, T0 + 189)
    run_job(engine, second, T0, T0 + 1800)
    params = {"from": "2026-11-01T00:00:00Z", "to": "2026-12-01T00:00:00Z"}
    report = api.ok(api.get("/v1/usage", params={**params, "group_by": "tenant,flavor"}))
    assert [(r["tenant"], r["flavor"], r["gpu_seconds"], r["cost"]) for r in report["rows"]] == [
        ("acme", "h100", 1800.0, "61.000"),  # 60 for the GPU, 1 for 4 cores at 0.5/hour
        ("lab-a", "h100", 189.0, "4.305"),
    ]
    assert report["total"]["cost"] == "65.305"
    assert report["from"].startswith("2026-11-01")
    text = api.get(
        "/v1/usage", params={**params, "group_by": "tenant"}, headers={"Accept": "text/csv"}
    )
    assert text.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(text.text)))
    assert [(r["tenant"], r["gpu_seconds"], r["cost"]) for r in rows] == [
        ("acme", "1800.0", "61.000"),
        ("lab-a", "189.0", "4.305"),
    ]
    mine = alice.ok(alice.get("/v1/usage", params={**params, "group_by": "tenant,user"}))
    assert [(r["tenant"], r["user"]) for r in mine["rows"]] == [("lab-a", "alice")]
    assert alice.get("/v1/usage", params={**params, "tenant": "acme"}).status_code == 404
    statement = api.ok(api.get("/v1/usage/statements/acme", params={"month": "2026-11"}))
    assert [
        (line["job_id"], line["gpu_hours"], line["gpu_hour_price"], line["cost"])
        for line in statement["lines"]
    ] == [(second, 0.5, "120.000", "61.000")]
    assert statement["net"] == statement["wallet_charges"] == "61.000"
    assert api.ok(api.get("/v1/tenants/acme/wallet"))["balance"] == "939.000"
    job = alice.ok(alice.get(f"/v1/jobs/{first}"))
    assert (job["cost"], job["max_cost"]) == ("4.305", None)
    bad = api.get("/v1/usage", params={**params, "group_by": "tenant,node"})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "query.group_by"


def test_a_job_shows_its_maximum_cost(api: ApiDriver) -> None:
    put_prices(api)
    body = a_job().with_gpus(2).with_(max_runtime_seconds=1800).body()
    job = api.ok(api.post("/v1/jobs", body), 201)
    shown = api.ok(api.get(f"/v1/jobs/{job['id']}"))
    assert (shown["cost"], shown["max_cost"]) == ("0.000", "82.000")


def test_a_tenant_that_becomes_industry_loses_its_credit_limit(api: ApiDriver) -> None:
    api.ok(api.request("PATCH", "/v1/tenants/lab-a/wallet", json={"credit_limit": "50"}))
    assert api.ok(api.get("/v1/tenants/lab-a/wallet"))["available"] == "50.000"
    api.ok(api.request("PATCH", "/v1/tenants/lab-a", json={"kind": "industry"}))
    wallet = api.ok(api.get("/v1/tenants/lab-a/wallet"))
    assert (wallet["billing"], wallet["credit_limit"]) == ("prepaid", "0.000")
    assert submit(api, "lab-a").status_code == 402


def test_fair_share_weights_follow_this_months_allocations_in_a_marked_cohort(
    api: ApiDriver,
) -> None:
    api.ok(api.post("/v1/cohorts", {"name": "grants", "weights_from_allocation": True}), 201)
    for name in ("uni-a", "uni-b", "uni-c"):
        body = {"name": name, "kind": "academic", "cohort": "grants", "weight": 2}
        api.ok(api.post("/v1/tenants", body), 201)

    def weights() -> dict[str, float]:
        rows = api.ok(api.get("/v1/share"))
        return {r["name"]: r["weight"] for r in rows if r["kind"] == "tenant"}

    assert weights()["uni-a"] == 2  # no allocation this month yet: the weights as set
    topup(api, "uni-a", "300")
    topup(api, "uni-b", "100")
    shown = weights()
    assert shown["uni-a"] == pytest.approx(4.5)  # the cohort's 6 split 3:1:0
    assert shown["uni-b"] == pytest.approx(1.5)
    assert shown["uni-c"] == pytest.approx(0.001)
    assert shown["lab-a"] == 1  # other cohorts keep their weights
    api.ok(api.request("PATCH", "/v1/cohorts/grants", json={"weights_from_allocation": False}))
    assert weights()["uni-a"] == 2
