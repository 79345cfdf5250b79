"""A typed HTTP client for the v1 API, shared by every ``yushan`` command.

Each method is one API call and returns the decoded JSON body as the server sent it, so
``-o json`` can print it untouched. Failures become :mod:`cli.errors` exceptions: an HTTP error
is parsed from its RFC 9457 problem document (``detail`` plus ``errors: [{field, message}]``),
and a transport failure says which URL could not be reached.

The ``httpx.Client`` is injectable so tests can pass FastAPI's ``TestClient`` (an ``httpx.Client``
subclass) or one with an ``httpx.MockTransport``; requests always use absolute URLs built from
``base_url``, so an injected client needs no base URL of its own.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import ModuleType, TracebackType
from typing import Any, Self

# httpx imports its own command-line tool (``httpx._main``: click, rich, pygments; a third of
# httpx's import time) only to offer ``httpx.main``; a placeholder makes that import fail, which
# httpx handles by defining a stub. The client never uses ``httpx.main``.
sys.modules.setdefault("httpx._main", ModuleType("httpx._main"))
import httpx  # noqa: E402

from cli.errors import (  # noqa: E402 - after the httpx._main placeholder
    ApiError,
    AuthenticationError,
    ConfigError,
    FieldError,
    UnreachableError,
    error_for_status,
)

JsonObject = dict[str, Any]
NO_TOKEN = (
    "no API token: set YUSHAN_TOKEN, or run 'yushan login --url URL --token TOKEN' "
    "(make run keeps the admin token in var/admin-token)"
)
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
STREAM_TIMEOUT = httpx.Timeout(30.0, connect=5.0, read=None)


@dataclass(frozen=True)
class Page:
    """One page of a cursor-paginated listing."""

    items: list[JsonObject]
    next_cursor: str | None


class YushanClient:
    def __init__(self, base_url: str, token: str | None, *, http: httpx.Client | None = None):
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._owns_http = http is None
        self._http = http if http is not None else httpx.Client(timeout=DEFAULT_TIMEOUT)

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- health (no token needed) --------------------------------------------------------------

    def health(self) -> JsonObject:
        """``/healthz``: the server process answers."""
        return _object(self._call("GET", "/healthz"))

    def readiness(self) -> tuple[bool, JsonObject]:
        """``/readyz``: whether the database answers with the newest schema, and the body."""
        with self._transport_errors():
            response = self._http.request("GET", self._url("/readyz"), headers=self._headers())
        body = response.json() if response.headers.get("content-type", "").endswith("json") else {}
        return response.status_code == 200, body if isinstance(body, dict) else {}

    def scheduler(self) -> JsonObject:
        """The scheduler's heartbeat: alive, leader, last cycle, namespace mode."""
        return _object(self._call("GET", "/v1/scheduler"))

    # -- identity -----------------------------------------------------------------------------

    def whoami(self) -> JsonObject:
        return _object(self._call("GET", "/v1/users/me"))

    # -- jobs ---------------------------------------------------------------------------------

    def submit_job(self, spec: Mapping[str, Any], idempotency_key: str | None = None) -> JsonObject:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        return _object(self._call("POST", "/v1/jobs", json=dict(spec), headers=headers))

    def list_jobs(
        self,
        *,
        tenant: str | None = None,
        statuses: list[str] | None = None,
        user: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
        array_id: str | None = None,
    ) -> Page:
        params: dict[str, Any] = {"limit": limit}
        filters = (("tenant", tenant), ("status", statuses), ("user", user), ("array_id", array_id))
        for name, value in filters:
            if value:
                params[name] = value
        if cursor:
            params["cursor"] = cursor
        return _page(self._call("GET", "/v1/jobs", params=params))

    def iter_jobs(
        self,
        *,
        tenant: str | None = None,
        statuses: list[str] | None = None,
        user: str | None = None,
        page_size: int = 200,
        array_id: str | None = None,
    ) -> Iterator[JsonObject]:
        """Every matching job, following ``next_cursor`` until the last page."""
        cursor: str | None = None
        while True:
            page = self.list_jobs(
                tenant=tenant,
                statuses=statuses,
                user=user,
                limit=page_size,
                cursor=cursor,
                array_id=array_id,
            )
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def get_job(self, job_id: str) -> JsonObject:
        return _object(self._call("GET", f"/v1/jobs/{job_id}"))

    def cancel_job(self, job_id: str) -> JsonObject:
        return _object(self._call("POST", f"/v1/jobs/{job_id}/cancel"))

    def get_array(self, array_id: str) -> JsonObject:
        return _object(self._call("GET", f"/v1/arrays/{array_id}"))

    def array_action(self, array_id: str, action: str) -> JsonObject:
        """``cancel``, ``hold`` or ``release`` every task of an array that it applies to."""
        return _object(self._call("POST", f"/v1/arrays/{array_id}/{action}"))

    def estimate_job(self, job_id: str) -> JsonObject:
        return _object(self._call("GET", f"/v1/jobs/{job_id}/estimate"))

    def hold_job(self, job_id: str) -> JsonObject:
        return _object(self._call("POST", f"/v1/jobs/{job_id}/hold"))

    def release_job(self, job_id: str) -> JsonObject:
        return _object(self._call("POST", f"/v1/jobs/{job_id}/release"))

    def update_job(self, job_id: str, changes: Mapping[str, Any]) -> JsonObject:
        return _object(self._call("PATCH", f"/v1/jobs/{job_id}", json=dict(changes)))

    def job_events(self, job_id: str) -> list[JsonObject]:
        return _objects(self._call("GET", f"/v1/jobs/{job_id}/events"))

    def stream_job_logs(
        self,
        job_id: str,
        *,
        worker: int | None = None,
        follow: bool = False,
        tail_lines: int | None = None,
    ) -> Iterator[str]:
        """The job's log text, chunk by chunk as the server sends it (forever with ``follow``)."""
        params: dict[str, Any] = {}
        if worker is not None:
            params["worker"] = worker
        if follow:
            params["follow"] = "true"
        if tail_lines is not None:
            params["tail_lines"] = tail_lines
        self._require_token("/v1/jobs")
        request = self._http.build_request(
            "GET",
            self._url(f"/v1/jobs/{job_id}/logs"),
            params=params,
            headers=self._headers({"Accept": "text/plain"}),
            timeout=STREAM_TIMEOUT,
        )
        with self._transport_errors():
            response = self._http.send(request, stream=True)
            try:
                if response.is_error:
                    response.read()
                    raise _problem(response)
                yield from response.iter_text()
            finally:
                response.close()

    # -- tenants, quotas and members ----------------------------------------------------------

    def list_tenants(self) -> list[JsonObject]:
        return _objects(self._call("GET", "/v1/tenants"))

    def get_tenant(self, name: str) -> JsonObject:
        return _object(self._call("GET", f"/v1/tenants/{name}"))

    def create_tenant(self, body: Mapping[str, Any]) -> JsonObject:
        return _object(self._call("POST", "/v1/tenants", json=dict(body)))

    def tenant_usage(self, name: str) -> JsonObject:
        return _object(self._call("GET", f"/v1/tenants/{name}/usage"))

    def tenant_queue(self, name: str) -> list[JsonObject]:
        """The tenant's waiting jobs in scheduling order, with the factors that order them."""
        return _objects(self._call("GET", f"/v1/tenants/{name}/queue"))

    def share_tree(self) -> list[JsonObject]:
        """The fair-share tree: cohorts, tenants and users, depth first."""
        return _objects(self._call("GET", "/v1/share"))

    def global_queue(self) -> list[JsonObject]:
        """Every waiting job in scheduling order (platform admins)."""
        return _objects(self._call("GET", "/v1/queue"))

    def update_tenant(self, name: str, changes: Mapping[str, Any]) -> JsonObject:
        return _object(self._call("PATCH", f"/v1/tenants/{name}", json=dict(changes)))

    def update_flavor(self, name: str, changes: Mapping[str, Any]) -> JsonObject:
        return _object(self._call("PATCH", f"/v1/flavors/{name}", json=dict(changes)))

    def tenant_limits(self, tenant: str) -> JsonObject:
        return _object(self._call("GET", f"/v1/tenants/{tenant}/limits"))

    def set_user_limits(self, tenant: str, user: str, limits: Mapping[str, Any]) -> JsonObject:
        path = f"/v1/tenants/{tenant}/limits/{user}"
        return _object(self._call("PUT", path, json=dict(limits)))

    def delete_user_limits(self, tenant: str, user: str) -> None:
        self._call("DELETE", f"/v1/tenants/{tenant}/limits/{user}")

    def get_quota(self, tenant: str) -> JsonObject:
        return _object(self._call("GET", f"/v1/tenants/{tenant}/quota"))

    def set_quota(self, tenant: str, quota: Mapping[str, Any]) -> JsonObject:
        return _object(self._call("PUT", f"/v1/tenants/{tenant}/quota", json=dict(quota)))

    def list_members(self, tenant: str) -> list[JsonObject]:
        return _objects(self._call("GET", f"/v1/tenants/{tenant}/members"))

    def add_member(self, tenant: str, user: str, role: str) -> JsonObject:
        body = {"user": user, "role": role}
        return _object(self._call("POST", f"/v1/tenants/{tenant}/members", json=body))

    def remove_member(self, tenant: str, user: str) -> None:
        self._call("DELETE", f"/v1/tenants/{tenant}/members/{user}")

    # -- users and tokens ---------------------------------------------------------------------

    def list_users(self) -> list[JsonObject]:
        return _objects(self._call("GET", "/v1/users"))

    def create_user(self, name: str, *, admin: bool = False) -> JsonObject:
        return _object(self._call("POST", "/v1/users", json={"name": name, "admin": admin}))

    def create_token(
        self, user: str, *, description: str = "", expires_in_seconds: int | None = None
    ) -> JsonObject:
        body: JsonObject = {"description": description}
        if expires_in_seconds is not None:
            body["expires_in_seconds"] = expires_in_seconds
        return _object(self._call("POST", f"/v1/users/{user}/tokens", json=body))

    def list_tokens(self, user: str) -> list[JsonObject]:
        return _objects(self._call("GET", f"/v1/users/{user}/tokens"))

    def revoke_token(self, user: str, token_id: str, *, force: bool = False) -> JsonObject:
        path = f"/v1/users/{user}/tokens/{token_id}" + ("?force=true" if force else "")
        return _object(self._call("DELETE", path))

    # -- platform -----------------------------------------------------------------------------

    def list_cohorts(self) -> list[JsonObject]:
        return _objects(self._call("GET", "/v1/cohorts"))

    def create_cohort(self, name: str, parent: str | None = None) -> JsonObject:
        return _object(self._call("POST", "/v1/cohorts", json={"name": name, "parent": parent}))

    def list_flavors(self) -> list[JsonObject]:
        return _objects(self._call("GET", "/v1/flavors"))

    def create_flavor(self, body: Mapping[str, Any]) -> JsonObject:
        return _object(self._call("POST", "/v1/flavors", json=dict(body)))

    def cluster(self) -> JsonObject:
        return _object(self._call("GET", "/v1/cluster"))

    def list_audit(
        self,
        *,
        limit: int = 100,
        cursor: str | None = None,
        filters: Mapping[str, str] | None = None,
    ) -> Page:
        """A page of the audit log; ``filters``: ``actor``, ``action``, ``since``, ``until``."""
        params: dict[str, Any] = {"limit": limit, **(filters or {})}
        if cursor:
            params["cursor"] = cursor
        return _page(self._call("GET", "/v1/audit", params=params))

    # -- admin lifecycle: update and delete ----------------------------------------------------

    def delete_tenant(self, name: str, *, force: bool = False) -> None:
        self._call("DELETE", f"/v1/tenants/{name}", params={"force": "true"} if force else None)

    def get_cohort(self, name: str) -> JsonObject:
        return _object(self._call("GET", f"/v1/cohorts/{name}"))

    def update_cohort(self, name: str, changes: Mapping[str, Any]) -> JsonObject:
        return _object(self._call("PATCH", f"/v1/cohorts/{name}", json=dict(changes)))

    def delete_cohort(self, name: str) -> None:
        self._call("DELETE", f"/v1/cohorts/{name}")

    def get_cohort_quota(self, name: str) -> JsonObject:
        return _object(self._call("GET", f"/v1/cohorts/{name}/quota"))

    def set_cohort_quota(self, name: str, quota: Mapping[str, Any]) -> JsonObject:
        return _object(self._call("PUT", f"/v1/cohorts/{name}/quota", json=dict(quota)))

    def get_flavor(self, name: str) -> JsonObject:
        return _object(self._call("GET", f"/v1/flavors/{name}"))

    def delete_flavor(self, name: str) -> None:
        self._call("DELETE", f"/v1/flavors/{name}")

    def update_user(self, name: str, *, admin: bool) -> JsonObject:
        return _object(self._call("PATCH", f"/v1/users/{name}", json={"admin": admin}))

    def delete_user(self, name: str) -> None:
        self._call("DELETE", f"/v1/users/{name}")

    # -- accounting ---------------------------------------------------------------------------

    def get_prices(self, *, at: str | None = None, history: bool = False) -> JsonObject:
        params: dict[str, Any] = {"history": "true"} if history else {}
        if at is not None:
            params["at"] = at
        return _object(self._call("GET", "/v1/prices", params=params))

    def set_prices(self, body: Mapping[str, Any]) -> JsonObject:
        return _object(self._call("PUT", "/v1/prices", json=dict(body)))

    def get_wallet(self, tenant: str) -> JsonObject:
        return _object(self._call("GET", f"/v1/tenants/{tenant}/wallet"))

    def set_wallet_policy(self, tenant: str, policy: Mapping[str, Any]) -> JsonObject:
        return _object(self._call("PATCH", f"/v1/tenants/{tenant}/wallet", json=dict(policy)))

    def wallet_transactions(self, tenant: str, *, limit: int = 50) -> Page:
        path = f"/v1/tenants/{tenant}/wallet/transactions"
        return _page(self._call("GET", path, params={"limit": limit}))

    def credit_wallet(self, tenant: str, kind: str, amount: str, note: str = "") -> JsonObject:
        body = {"kind": kind, "amount": amount, "note": note}
        path = f"/v1/tenants/{tenant}/wallet/transactions"
        return _object(self._call("POST", path, json=body))

    def set_member_budget(self, tenant: str, user: str, budget: str) -> JsonObject:
        path = f"/v1/tenants/{tenant}/wallet/members/{user}"
        return _object(self._call("PUT", path, json={"budget": budget}))

    def usage_report(self, params: Mapping[str, Any], *, as_csv: bool = False) -> Any:
        accept = {"Accept": "text/csv"} if as_csv else None
        response = self._call("GET", "/v1/usage", params=dict(params), headers=accept)
        return response.text if as_csv else _object(response)

    def usage_statement(self, tenant: str, month: str, *, as_csv: bool = False) -> Any:
        accept = {"Accept": "text/csv"} if as_csv else None
        path = f"/v1/usage/statements/{tenant}"
        response = self._call("GET", path, params={"month": month}, headers=accept)
        return response.text if as_csv else _object(response)

    # -- plumbing -----------------------------------------------------------------------------

    def _url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def _require_token(self, path: str) -> None:
        """Every ``/v1`` call needs a token: say how to get one instead of sending none."""
        if not self._token and path.startswith("/v1/"):
            raise AuthenticationError(401, NO_TOKEN)

    def _headers(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        headers = {"Accept": "application/json", **(extra or {})}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        return headers

    def _call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        self._require_token(path)
        with self._transport_errors():
            response = self._http.request(
                method, self._url(path), json=json, params=params, headers=self._headers(headers)
            )
        if response.is_error:
            raise _problem(response)
        return response

    def _transport_errors(self) -> _TransportErrors:
        return _TransportErrors(self.base_url)


class _TransportErrors:
    """Turns httpx transport failures into client errors that name the server's URL."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
            raise ConfigError(f"invalid server URL {self.base_url!r}: {exc}") from exc
        if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
            raise UnreachableError(f"cannot reach Yushan at {self.base_url}: {exc}") from exc
        if isinstance(exc, httpx.TransportError):
            raise UnreachableError(
                f"lost the connection to Yushan at {self.base_url}: {exc or type(exc).__name__}"
            ) from exc


def _problem(response: httpx.Response) -> ApiError:
    """The API error a response describes, read from its problem document when it has one."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        snippet = response.text.strip()[:200] or response.reason_phrase
        return error_for_status(response.status_code, f"HTTP {response.status_code}: {snippet}")
    detail = str(body.get("detail") or body.get("title") or response.reason_phrase)
    fields = [
        FieldError(str(item.get("field", "")), str(item.get("message", "")))
        for item in body.get("errors") or []
        if isinstance(item, dict)
    ]
    return error_for_status(response.status_code, detail, fields)


def _unexpected(response: httpx.Response, expected: str) -> ApiError:
    return ApiError(
        response.status_code,
        f"unexpected answer from {response.request.url}: expected {expected}",
    )


def _object(response: httpx.Response) -> JsonObject:
    body = response.json()
    if not isinstance(body, dict):
        raise _unexpected(response, "a JSON object")
    return body


def _objects(response: httpx.Response) -> list[JsonObject]:
    body = response.json()
    if not isinstance(body, list) or not all(isinstance(item, dict) for item in body):
        raise _unexpected(response, "a JSON list of objects")
    return body


def _page(response: httpx.Response) -> Page:
    body = _object(response)
    items = body.get("items")
    if not isinstance(items, list):
        raise _unexpected(response, "a page with 'items'")
    cursor = body.get("next_cursor")
    return Page(items=items, next_cursor=str(cursor) if cursor else None)
