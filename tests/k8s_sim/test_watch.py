"""Watch semantics through ``kubernetes.watch.Watch``: initial state, resume from a
resourceVersion, 410 after compaction, bookmarks, timeouts, dropped streams and selectors."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from kubernetes import client

from k8s.sim import EmbeddedCluster
from tests.k8s_sim.conftest import a_pod, new_watch, wait_for


def collect(stream: Any, stop_after: int | None = None) -> list[tuple[str, str]]:
    events: list[tuple[str, str]] = []
    for event in stream:
        obj = event["object"]
        name = obj["metadata"].get("name", "") if isinstance(obj, dict) else obj.metadata.name
        events.append((event["type"], name))
        if stop_after is not None and len(events) >= stop_after:
            break
    return events


def test_watch_without_version_starts_with_current_state(core: Any) -> None:
    core.create_namespaced_pod("default", a_pod("a").build())
    core.create_namespaced_pod("default", a_pod("b").build())

    stream = new_watch().stream(core.list_namespaced_pod, "default", timeout_seconds=1)
    events = collect(stream, stop_after=2)

    assert events == [("ADDED", "a"), ("ADDED", "b")]


def test_watch_resumes_after_a_resource_version(core: Any) -> None:
    core.create_namespaced_pod("default", a_pod("before").build())
    listed = core.list_namespaced_pod("default")
    core.create_namespaced_pod("default", a_pod("after").build())
    core.delete_namespaced_pod("before", "default")

    events = collect(
        new_watch().stream(
            core.list_namespaced_pod,
            "default",
            resource_version=listed.metadata.resource_version,
            timeout_seconds=1,
        ),
        stop_after=2,
    )

    assert events == [("ADDED", "after"), ("DELETED", "before")]


def test_watch_follows_pod_lifecycle_live(core: Any) -> None:
    rv = core.list_namespaced_pod("default").metadata.resource_version
    watcher = new_watch()
    phases: list[str] = []

    def create_later() -> None:
        core.create_namespaced_pod("default", a_pod("live").on("h100-0").runs_for(2).build())

    threading.Timer(0.1, create_later).start()
    for event in watcher.stream(
        core.list_namespaced_pod, "default", resource_version=rv, timeout_seconds=5
    ):
        phases.append(event["object"].status.phase)
        if phases[-1] == "Succeeded":
            watcher.stop()

    assert phases[0] == "Pending"
    assert "Running" in phases
    assert phases[-1] == "Succeeded"


def test_watch_from_compacted_version_gets_410(cluster: EmbeddedCluster, core: Any) -> None:
    stale = core.list_namespaced_pod("default").metadata.resource_version
    core.create_namespaced_pod("default", a_pod("x").build())
    cluster.faults.compact()

    with pytest.raises(client.ApiException) as raised:
        collect(
            new_watch().stream(
                core.list_namespaced_pod, "default", resource_version=stale, timeout_seconds=1
            )
        )

    assert raised.value.status == 410


def test_exact_list_from_compacted_version_gets_http_410(
    cluster: EmbeddedCluster, core: Any
) -> None:
    stale = core.list_node().metadata.resource_version
    core.create_namespaced_pod("default", a_pod("x").build())
    cluster.faults.compact()

    with pytest.raises(client.ApiException) as raised:
        core.list_node(resource_version=stale, resource_version_match="Exact")

    assert raised.value.status == 410


def test_bookmarks_carry_the_current_resource_version(core: Any) -> None:
    rv = core.list_node().metadata.resource_version
    core.create_namespaced_pod("default", a_pod("x").build())

    stream = new_watch().stream(
        core.list_node, resource_version=rv, allow_watch_bookmarks=True, timeout_seconds=2
    )
    bookmark = next(event for event in stream if event["type"] == "BOOKMARK")

    assert int(bookmark["raw_object"]["metadata"]["resourceVersion"]) > int(rv)


def test_timeout_seconds_ends_an_idle_watch(core: Any) -> None:
    rv = core.list_node().metadata.resource_version

    events = collect(new_watch().stream(core.list_node, resource_version=rv, timeout_seconds=1))

    assert events == []


def test_dropped_watch_ends_the_stream(cluster: EmbeddedCluster, core: Any) -> None:
    rv = core.list_node().metadata.resource_version
    resp = core.list_node(
        watch=True, resource_version=rv, timeout_seconds=20, _preload_content=False
    )
    threading.Timer(0.2, cluster.faults.drop_watches).start()

    started = time.monotonic()
    body = resp.read()

    assert body == b""
    assert time.monotonic() - started < 10
    resp.release_conn()


def test_watch_with_label_selector_sees_objects_leave_the_selection(core: Any) -> None:
    core.create_namespaced_pod("default", a_pod("p").labelled(queue="q1").build())
    rv = core.list_namespaced_pod("default").metadata.resource_version
    core.patch_namespaced_pod("p", "default", {"metadata": {"labels": {"queue": "q2"}}})
    core.patch_namespaced_pod("p", "default", {"metadata": {"labels": {"queue": "q1"}}})

    events = collect(
        new_watch().stream(
            core.list_namespaced_pod,
            "default",
            label_selector="queue=q1",
            resource_version=rv,
            timeout_seconds=1,
        ),
        stop_after=2,
    )

    assert events == [("DELETED", "p"), ("ADDED", "p")]


def test_node_watch_sees_readiness_changes(cluster: EmbeddedCluster, core: Any) -> None:
    rv = core.list_node().metadata.resource_version
    cluster.set_node_ready("v100-0", ready=False)

    stream = new_watch().stream(core.list_node, resource_version=rv, timeout_seconds=2)
    event = next(iter(stream))

    assert (event["type"], event["object"].metadata.name) == ("MODIFIED", "v100-0")
    assert event["object"].status.conditions[0].status == "False"
    wait_for(lambda: cluster.request_count("watch", "nodes") == 1)
