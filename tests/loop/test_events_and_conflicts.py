"""The loop under concurrency and events: a cancel during the cycle costs only that job, the
loop reads the cluster from the watch cache (no LIST per iteration), a submission or cancel
wakes it at once (in-process or through PostgreSQL NOTIFY), and usage accrual survives an
iteration that was rolled back."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from api.app import create_app
from api.settings import ApiSettings
from k8s.types import GangObservation, NodeInfo
from k8s.watcher import ClusterWatcher
from quotas.decay import decay
from scheduler.loop import LoopSettings, SchedulerLoop
from scheduler.model import NodeState
from scheduler.policy import Policy
from scheduler.wakeup import JobChangeListener
from store import cluster as cluster_store
from store import jobs
from store.common import new_job_id
from store.db import SessionFactory, session_factory, transaction
from store.models import Job
from store.notify import signal_job_changes
from tests.loop.conftest import Platform, run_until


def wait_for(check: Callable[[], bool], what: str, timeout: float = 10.0) -> float:
    """Poll ``check`` (bounded); returns the seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if check():
            return time.monotonic() - started
        time.sleep(0.01)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def phases(platform: Platform, job_id: str) -> list[str]:
    return [p["status"]["phase"] for p in platform.pods(job_id)]


def is_sqlite(platform: Platform) -> bool:
    bind = platform.sessions.kw["bind"]
    return bool(bind.dialect.name == "sqlite")


# -- conflicts ------------------------------------------------------------------------------


def test_a_cancel_during_the_cycle_drops_only_that_job(platform: Platform) -> None:
    victim = platform.submit()
    others = [platform.submit() for _ in range(3)]
    loop = platform.loop()
    original = loop._persist

    def cancel_then_persist(session: Session, *args: Any) -> None:
        if is_sqlite(platform):
            # The iteration holds SQLite's write lock (BEGIN IMMEDIATE), so another
            # connection's cancel would wait for it: apply the cancel's write in its place.
            cancel = (
                update(Job)
                .where(Job.id == victim)
                .values(status="cancelled", version=Job.version + 1)
                .execution_options(synchronize_session=False)
            )
            session.execute(cancel)
        else:  # a real concurrent cancel, committed by another connection
            with transaction(platform.sessions) as other:
                jobs.cancel(other, jobs.get(other, victim), by="alice")
        original(session, *args)

    loop._persist = cancel_then_persist  # type: ignore[method-assign,assignment]
    report = loop.run_once()
    loop._persist = original  # type: ignore[method-assign]
    assert not report.conflict
    assert report.skipped == [victim]
    assert sorted(report.admitted) == sorted(others)
    assert platform.job(victim).status == "cancelled"
    assert platform.pods(victim) == []
    assert {platform.job(j).status for j in others} == {"admitted"}
    assert all(len(platform.pods(j)) == 1 for j in others)
    run_until(loop, lambda: all(platform.job(j).status == "running" for j in others))
    assert platform.pods(victim) == []


def test_a_cancel_of_a_running_job_during_observation_costs_only_that_job(
    platform: Platform,
) -> None:
    running = platform.submit(seconds=3600)
    finishing = platform.submit(seconds=40)  # 2 s at the cluster's time scale
    loop = platform.loop()
    run_until(
        loop,
        lambda: {platform.job(j).status for j in (running, finishing)} == {"running"},
    )
    # The pod ends while no iteration runs: the next one would record "succeeded".
    wait_for(lambda: phases(platform, finishing) == ["Succeeded"], "the pod to succeed")
    queued = platform.submit()
    original = loop._apply_observations

    def cancel_then_observe(session: Session, *args: Any) -> None:
        cancel = (
            update(Job)
            .where(Job.id == finishing)
            .values(status="cancelled", version=Job.version + 1)
            .execution_options(synchronize_session=False)
        )
        session.execute(cancel)
        original(session, *args)

    loop._apply_observations = cancel_then_observe  # type: ignore[method-assign,assignment]
    report = loop.run_once()
    loop._apply_observations = original  # type: ignore[method-assign]
    assert report.skipped == [finishing]
    assert report.admitted == [queued]
    assert platform.job(finishing).status == "cancelled"
    assert platform.job(running).status == "running"


def test_a_job_found_cancelled_during_observation_still_holds_its_node(
    platform: Platform,
) -> None:
    job_id = platform.submit(gpus=8, seconds=3600)
    loop = platform.loop()
    assert loop.run_once().dispatched == [job_id]
    node = (platform.job(job_id).placement or [""])[0]
    wait_for(lambda: phases(platform, job_id) == ["Running"], "the pod to run")
    original = loop._apply_observations
    seen: list[tuple[NodeState, ...]] = []
    original_states = loop._node_states

    def cancel_then_observe(session: Session, *args: Any) -> None:
        cancel = (
            update(Job)
            .where(Job.id == job_id)
            .values(status="cancelled", version=Job.version + 1)
            .execution_options(synchronize_session=False)
        )
        session.execute(cancel)
        original(session, *args)  # admitted -> running is dropped: the row moved on

    def record(*args: Any) -> tuple[tuple[NodeState, ...], Any]:
        states, records = original_states(*args)
        seen.append(states)
        return states, records

    loop._apply_observations = cancel_then_observe  # type: ignore[method-assign,assignment]
    loop._node_states = record  # type: ignore[method-assign,assignment]
    report = loop.run_once()
    assert report.skipped == [job_id]
    assert {n.name: n.foreign.gpu for n in seen[-1]}[node] == 8  # its pod still runs there
    assert report.deleted == [job_id]


# -- usage ----------------------------------------------------------------------------------


def test_usage_accrual_survives_a_rolled_back_iteration(platform: Platform) -> None:
    now = [1000.0]
    leader = [True]
    loop = SchedulerLoop(
        platform.sessions,
        platform.client(),
        Policy.named("fair"),
        clock=lambda: now[0],
        is_leader=lambda: leader[0],
    )
    job_id = platform.submit(gpus=8, seconds=3600)
    run_until(loop, lambda: platform.job(job_id).status == "running")
    now[0] = 1100.0
    leader[0] = False  # the lease lapses during the iteration: it is rolled back
    assert loop.run_once().fenced
    now[0] = 1200.0
    leader[0] = True
    report = loop.run_once()
    assert not report.fenced
    assert not report.conflict
    with platform.sessions() as session:
        usage = {(u.tenant, u.user): u.gpu_seconds for u in cluster_store.load_usage(session)}
    expected = decay(0.0, 8.0, 200.0, Policy.named("fair").half_life_seconds)
    assert usage[("lab-a", "")] == pytest.approx(expected)  # 200 s, not the last 100 s


# -- the watch cache ------------------------------------------------------------------------


def test_the_loop_sends_no_list_in_steady_state(platform: Platform) -> None:
    client = platform.client()
    with ClusterWatcher(client, watch_timeout_seconds=30) as watcher:
        assert watcher.wait_synced(10)
        loop = platform.loop(client, view=watcher)
        job_ids = [platform.submit(gpus=2, workers=2, seconds=3600) for _ in range(3)]
        run_until(loop, lambda: all(platform.job(j).status == "running" for j in job_ids))
        cluster = platform.cluster
        lists, total = cluster.request_count("list"), cluster.request_count()
        watches = cluster.request_count("watch")
        for _ in range(5):
            report = loop.run_once()
            assert not report.dispatched
            assert not report.deleted
            assert not report.cluster_error
        assert cluster.request_count("list") == lists
        assert cluster.request_count() - total == cluster.request_count("watch") - watches
        # A cancel is cleaned up from the cache's view of the pods: still no LIST.
        with transaction(platform.sessions) as session:
            jobs.cancel(session, jobs.get(session, job_ids[0]), by="alice")
        run_until(loop, lambda: not platform.pods(job_ids[0]))
        assert cluster.request_count("list") == lists


class FrozenView:
    """The watcher's view as it was when frozen: a cache that has not caught up yet."""

    def __init__(self, watcher: ClusterWatcher) -> None:
        self.watcher = watcher
        self.frozen: tuple[list[NodeInfo], dict[str, GangObservation]] | None = None

    def snapshot(self) -> tuple[list[NodeInfo], dict[str, GangObservation]]:
        return self.frozen or self.watcher.snapshot()


def test_a_dispatch_is_not_repeated_while_the_cache_catches_up(platform: Platform) -> None:
    client = platform.client()
    with ClusterWatcher(client, watch_timeout_seconds=30) as watcher:
        assert watcher.wait_synced(10)
        view = FrozenView(watcher)
        loop = platform.loop(client, view=view)
        job_id = platform.submit(gpus=1, workers=2, seconds=3600)
        view.frozen = watcher.snapshot()  # no pod of the job in it
        assert loop.run_once().dispatched == [job_id]
        assert loop.run_once().dispatched == []  # its pods are expected, not missing
        view.frozen = None
        run_until(loop, lambda: platform.job(job_id).status == "running")
    assert platform.cluster.request_count("create", "pods") == 2


def test_pods_the_cache_does_not_show_yet_hold_their_node_after_a_cancel(
    platform: Platform,
) -> None:
    client = platform.client()
    with ClusterWatcher(client, watch_timeout_seconds=30) as watcher:
        assert watcher.wait_synced(10)
        view = FrozenView(watcher)
        loop = platform.loop(client, view=view)
        job_id = platform.submit(gpus=8, seconds=3600)
        view.frozen = watcher.snapshot()  # the cache will not show the job's pod
        assert loop.run_once().dispatched == [job_id]
        node = (platform.job(job_id).placement or [""])[0]
        with transaction(platform.sessions) as session:
            jobs.cancel(session, jobs.get(session, job_id), by="alice")
        seen: list[tuple[NodeState, ...]] = []
        original = loop._node_states

        def record(*args: Any) -> tuple[tuple[NodeState, ...], Any]:
            states, records = original(*args)
            seen.append(states)
            return states, records

        loop._node_states = record  # type: ignore[method-assign,assignment]
        loop.run_once()
        # The pod exists although the cache does not show it: its GPUs are not free.
        assert {n.name: n.foreign.gpu for n in seen[-1]}[node] == 8
        view.frozen = None  # the cache catches up: the pod is seen, deleted, and gone

        def freed() -> bool:
            return {n.name: n.foreign.gpu for n in seen[-1]}[node] == 0

        run_until(loop, lambda: not platform.pods(job_id) and freed())


def test_a_cluster_unreachable_behind_the_cache_leaves_jobs_waiting(platform: Platform) -> None:
    client = platform.client()
    with ClusterWatcher(client, watch_timeout_seconds=30, backoff_max=0.1) as watcher:
        assert watcher.wait_synced(10)
        loop = platform.loop(client, view=watcher)
        watcher.add_listener(loop.notify)
        loop.run_once()
        loop.wake.clear()
        job_id = platform.submit()
        platform.cluster.stop()
        # Another event may wake the loop first; iterating then could admit the job on the
        # cache, which is still good until the watch fails. Wait for the failure itself.
        wait_for(lambda: watcher.last_error is not None, "the cache to lose the cluster")
        assert loop.wake.is_set()  # the cache's error (if nothing before it) woke the loop
        wait_for(lambda: loop.run_once().cluster_error is not None, "the loop to see the error")
    job = platform.job(job_id)
    assert job.status == "queued"  # not admitted on a cache that cannot be refreshed
    assert job.reason == "ClusterUnreachable"


# -- wake-up --------------------------------------------------------------------------------


def cancelled(sessions: SessionFactory, job_id: str) -> bool:
    """Cancel the job; ``False`` when a concurrent writer changed it first (try again)."""
    try:
        with transaction(sessions) as session:
            jobs.cancel(session, jobs.get(session, job_id), by="alice")
    except StaleDataError:
        return False
    return True


@contextmanager
def running_loop(loop: SchedulerLoop) -> Iterator[threading.Thread]:
    stop = threading.Event()
    thread = threading.Thread(target=loop.run_forever, args=(stop,), daemon=True)
    thread.start()
    try:
        yield thread
    finally:
        stop.set()
        thread.join(10)
        assert not thread.is_alive()


def test_a_submission_wakes_the_loop_without_waiting_for_the_interval(
    platform: Platform, database_url: str
) -> None:
    client = platform.client()
    settings = LoopSettings(interval_seconds=300.0)  # the safety tick never fires here
    with ClusterWatcher(client, watch_timeout_seconds=30) as watcher:
        assert watcher.wait_synced(10)
        loop = platform.loop(client, settings=settings, view=watcher)
        watcher.add_listener(loop.notify)
        if is_sqlite(platform):  # one process: the API's sessions signal in-process
            app = create_app(ApiSettings(database_url=database_url), on_job_change=loop.notify)
            api_sessions = app.state.session_factory
            listener = None
        else:  # another process's API: PostgreSQL NOTIFY, heard by the LISTEN thread
            app = create_app(ApiSettings(database_url=database_url))
            api_sessions = app.state.session_factory
            listener = JobChangeListener(database_url, loop.notify).start()
            assert listener.listening.wait(10)
        try:
            with running_loop(loop):
                wait_for(lambda: loop.iterations >= 1 and not loop.wake.is_set(), "idle loop")
                idle = loop.iterations
                job_id = submit_through(api_sessions, platform)
                waited = wait_for(lambda: len(platform.pods(job_id)) == 1, "the job's pod")
                assert waited < 10
                assert loop.iterations > idle
                # a cancel wakes it too, and the pods go (retried as a client retries a 409:
                # the running loop may move the job on between the read and the update)
                wait_for(lambda: cancelled(api_sessions, job_id), "the cancel to commit")
                wait_for(lambda: not platform.pods(job_id), "the cancelled job's pod to go")
        finally:
            if listener is not None:
                listener.stop()
            app.state.engine.dispose()


def submit_through(sessions: Any, platform: Platform) -> str:
    request = jobs.JobRequest(
        tenant="lab-a",
        name="wake",
        image="pytorch",
        flavor="h100",
        gpus=1,
        annotations={"sim.yushan.io/duration-seconds": "3600"},
    )
    with transaction(sessions) as session:
        return jobs.submit(session, request, user="alice", job_id=new_job_id()).job.id


def test_the_scheduler_own_sessions_do_not_signal(platform: Platform) -> None:
    calls: list[int] = []
    hooked = session_factory(platform.sessions.kw["bind"])
    signal_job_changes(hooked, lambda: calls.append(1))
    with transaction(hooked) as session:
        jobs.get(session, platform.submit())  # a read only: no signal
    assert calls == []
    submit_through(hooked, platform)
    assert calls == [1]
    queued = platform.submit()

    def cancel_then_fail() -> None:
        with transaction(hooked) as session:
            jobs.cancel(session, jobs.get(session, queued), by="alice")
            session.flush()
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        cancel_then_fail()
    assert calls == [1]  # a rolled-back change signals nothing


def test_pod_events_wake_the_loop(platform: Platform) -> None:
    client = platform.client()
    settings = LoopSettings(interval_seconds=300.0)  # the safety tick never fires here
    with ClusterWatcher(client, watch_timeout_seconds=30) as watcher:
        assert watcher.wait_synced(10)
        loop = platform.loop(client, settings=settings, view=watcher)
        watcher.add_listener(loop.notify)
        with running_loop(loop):
            wait_for(lambda: loop.iterations >= 1 and not loop.wake.is_set(), "idle loop")
            job_id = platform.submit(seconds=20)  # 1 s at the cluster's time scale
            loop.notify()  # the submission (no API here); the rest is driven by pod events
            wait_for(lambda: platform.job(job_id).status == "succeeded", "the job to finish")
