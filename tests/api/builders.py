"""Small fluent builders for API test objects and a driver that speaks as a given user."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import httpx
from fastapi.testclient import TestClient


@dataclass(frozen=True)
class JobBuilder:
    tenant: str = "lab-a"
    name: str = "train"
    image: str = "nvcr.io/nvidia/pytorch:24.05-py3"
    flavor: str = "h100"
    gpus: int = 1
    extra: dict[str, Any] = field(default_factory=dict)

    def in_tenant(self, tenant: str) -> JobBuilder:
        return replace(self, tenant=tenant)

    def with_gpus(self, gpus: int) -> JobBuilder:
        return replace(self, gpus=gpus)

    def with_(self, **fields: Any) -> JobBuilder:
        return replace(self, extra={**self.extra, **fields})

    def body(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "name": self.name,
            "image": self.image,
            "flavor": self.flavor,
            "gpus": self.gpus,
            "command": ["python", "train.py"],
            **self.extra,
        }


def a_job() -> JobBuilder:
    return JobBuilder()


class ApiDriver:
    """Calls the API with a bearer token; ``as_user`` returns a driver for another token."""

    def __init__(self, client: TestClient, token: str) -> None:
        self.client = client
        self.token = token

    def as_token(self, token: str) -> ApiDriver:
        return ApiDriver(self.client, token)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        response: httpx.Response = self.client.request(method, path, headers=headers, **kwargs)
        return response

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, json: Any = None, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, json=json, **kwargs)

    def put(self, path: str, json: Any = None, **kwargs: Any) -> httpx.Response:
        return self.request("PUT", path, json=json, **kwargs)

    def ok(self, response: httpx.Response, status: int = 200) -> Any:
        assert response.status_code == status, response.text
        return response.json() if response.content else None

    # -- platform set-up ------------------------------------------------------------------

    def setup_platform(self, tenants: tuple[str, ...] = ("lab-a", "lab-b"), gpus: int = 16) -> None:
        self.ok(self.post("/v1/cohorts", {"name": "academic"}), 201)
        self.ok(
            self.post(
                "/v1/flavors",
                {
                    "name": "h100",
                    "node_labels": {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"},
                },
            ),
            201,
        )
        for tenant in tenants:
            self.ok(
                self.post(
                    "/v1/tenants",
                    {
                        "name": tenant,
                        "kind": "academic",
                        "cohort": "academic",
                        "quota": {"flavors": {"h100": {"gpu": {"nominal": gpus}}}},
                    },
                ),
                201,
            )

    def user_with_token(self, name: str, tenant: str | None, role: str = "member") -> ApiDriver:
        self.ok(self.post("/v1/users", {"name": name}), 201)
        if tenant is not None:
            self.ok(self.post(f"/v1/tenants/{tenant}/members", {"user": name, "role": role}), 201)
        token = self.ok(self.post(f"/v1/users/{name}/tokens", {}), 201)["token"]
        return self.as_token(token)
