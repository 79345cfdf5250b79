"""The fair ordering's shortcuts give exactly the order of their plain definitions, whatever the
ties in priority, users' usage and submission times:

* a tenant written off mid-cycle hands its remaining jobs over in one step
  (:meth:`scheduler.ordering.FairOrdering.retire`), in the order the tournament would have served
  them one by one;
* the order inside a tenant sorts by id only the runs of equal submission times
  (:func:`scheduler.ordering._in_tenant_order`)."""

from __future__ import annotations

from random import Random

from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.model import JobState, Priority
from scheduler.ordering import FairOrdering, _in_tenant_order
from scheduler.policy import Policy
from scheduler.state import SchedulingState
from tests.scheduler.builders import SnapshotBuilder

FAIR = Policy.named("fair")
USERS = ("ann", "bob", "cy", "dee")

job_specs = st.lists(
    st.tuples(
        st.sampled_from(USERS),
        st.sampled_from(list(Priority)),
        st.integers(0, 4),  # few distinct submission times: many ties
    ),
    min_size=1,
    max_size=40,
)
user_usages = st.fixed_dictionaries({user: st.sampled_from([0.0, 0.0, 1.5, 3.0]) for user in USERS})


def _ordering(specs: list[tuple[str, Priority, int]], usages: dict[str, float]) -> FairOrdering:
    builder = SnapshotBuilder().tenant("a", gpu=8).nodes(1)
    for index, (user, priority, submitted) in enumerate(specs):
        builder.queued(
            f"j{index:02d}", "a", user=user, priority=priority, submitted_at=float(submitted)
        )
    for user, usage in usages.items():
        builder.usage("a", usage, user=user)
    snapshot = builder.build()
    state = SchedulingState(
        snapshot.tenants, snapshot.cohorts, snapshot.nodes, snapshot.running, FAIR.topology_label
    )
    return FairOrdering(
        snapshot.queued, state.tree, state.entitlement(), snapshot.usage, FAIR, snapshot.now
    )


def _served_one_by_one(ordering: FairOrdering) -> list[str]:
    served: list[str] = []
    while (step := ordering.next()) is not None:
        job: JobState = step[0]
        served.append(job.id)
        ordering.charged(job, False)
    return served


@settings(max_examples=300, deadline=None)
@given(job_specs, user_usages, st.integers(0, 39))
def test_retire_hands_over_the_jobs_in_the_order_they_would_be_served(
    specs: list[tuple[str, Priority, int]], usages: dict[str, float], served_before: int
) -> None:
    expected = _served_one_by_one(_ordering(specs, usages))
    ordering = _ordering(specs, usages)
    served: list[str] = []
    for _ in range(min(served_before, len(specs) - 1)):
        step = ordering.next()
        assert step is not None
        served.append(step[0].id)
        ordering.charged(step[0], False)
    step = ordering.next()
    assert step is not None
    rest = ordering.retire(step[0])
    assert [*served, step[0].id, *(job.id for job in rest)] == expected
    assert ordering.next() is None


@settings(max_examples=300, deadline=None)
@given(job_specs, st.randoms(use_true_random=False))
def test_jobs_in_tenant_order_are_by_priority_then_submission_then_id(
    specs: list[tuple[str, Priority, int]], random: Random
) -> None:
    builder = SnapshotBuilder()
    jobs = [
        builder.job(f"j{index:02d}", "a", user=user, priority=priority, submitted_at=float(time))
        for index, (user, priority, time) in enumerate(specs)
    ]
    random.shuffle(jobs)
    expected = sorted(jobs, key=lambda j: (-j.priority, j.submitted_at, j.id))
    assert _in_tenant_order(jobs) == expected
