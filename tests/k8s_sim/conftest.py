"""Fixtures and builders for the embedded cluster tests: a fast cluster per test and clients."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
from kubernetes import client, watch

from k8s.sim import DURATION_ANNOTATION, EXIT_CODE_ANNOTATION, EmbeddedCluster

TIME_SCALE = 0.01
T = TypeVar("T")


@pytest.fixture
def cluster() -> Iterator[EmbeddedCluster]:
    with EmbeddedCluster(time_scale=TIME_SCALE, bookmark_interval=0.2) as running:
        yield running


@pytest.fixture
def api_client(cluster: EmbeddedCluster) -> Iterator[Any]:
    configured: Any = cluster.api_client()
    yield configured
    configured.close()


@pytest.fixture
def core(api_client: Any) -> Any:
    return client.CoreV1Api(api_client)


def new_watch() -> Any:
    """A ``kubernetes.watch.Watch`` (the class is untyped, hence the single ignore here)."""
    return watch.Watch()  # type: ignore[no-untyped-call]


def wait_for(probe: Callable[[], T | None], timeout: float = 5.0) -> T:
    """Poll ``probe`` until it returns something truthy, or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(0.01)


def pod_phase(core: Any, name: str, namespace: str = "default") -> str:
    return str(core.read_namespaced_pod(name, namespace).status.phase)


def wait_for_phase(core: Any, name: str, phase: str, namespace: str = "default") -> Any:
    return wait_for(
        lambda: (pod := core.read_namespaced_pod(name, namespace)).status.phase == phase and pod
    )


class PodBuilder:
    """Fluent builder of ``V1Pod`` objects: ``a_pod("p").on("h100-0").gpus(8).build()``."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._node: str | None = None
        self._labels: dict[str, str] = {}
        # Long enough (6 s at TIME_SCALE) that a pod seen Running is still Running.
        self._annotations: dict[str, str] = {DURATION_ANNOTATION: "600"}
        self._limits: dict[str, str] = {}
        self._deadline: int | None = None
        self._grace: int | None = None
        self._containers = ["main"]
        self._node_selector: dict[str, str] = {}

    def on(self, node: str) -> PodBuilder:
        self._node = node
        return self

    def gpus(self, count: int) -> PodBuilder:
        self._limits["nvidia.com/gpu"] = str(count)
        return self

    def cpu(self, amount: str) -> PodBuilder:
        self._limits["cpu"] = amount
        return self

    def runs_for(self, seconds: float) -> PodBuilder:
        self._annotations[DURATION_ANNOTATION] = str(seconds)
        return self

    def exits_with(self, code: int) -> PodBuilder:
        self._annotations[EXIT_CODE_ANNOTATION] = str(code)
        return self

    def deadline(self, seconds: int) -> PodBuilder:
        self._deadline = seconds
        return self

    def grace(self, seconds: int) -> PodBuilder:
        self._grace = seconds
        return self

    def labelled(self, **labels: str) -> PodBuilder:
        self._labels.update(labels)
        return self

    def selecting(self, **labels: str) -> PodBuilder:
        self._node_selector.update(labels)
        return self

    def containers(self, *names: str) -> PodBuilder:
        self._containers = list(names)
        return self

    def build(self) -> client.V1Pod:
        resources = client.V1ResourceRequirements(limits=self._limits or None)
        return client.V1Pod(
            metadata=client.V1ObjectMeta(
                name=self._name, labels=self._labels or None, annotations=self._annotations
            ),
            spec=client.V1PodSpec(
                node_name=self._node,
                node_selector=self._node_selector or None,
                restart_policy="Never",
                active_deadline_seconds=self._deadline,
                termination_grace_period_seconds=self._grace,
                containers=[
                    client.V1Container(name=name, image="busybox", resources=resources)
                    for name in self._containers
                ],
            ),
        )


def a_pod(name: str) -> PodBuilder:
    return PodBuilder(name)
