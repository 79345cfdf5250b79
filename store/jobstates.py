"""The job state machine: every legal transition, defined in exactly one place.

::

    queued ──► admitted ──► running ──► succeeded
      ▲  │        │  │         │  └───► failed
      │  │        │  └─────────┼──────► failed        (dispatch error, node lost past retries)
      │  │        └──► preempted ◄──────┘            (evicted; requeued with backoff)
      │  └──────────────────────────────► cancelled   (from any non-final state)
      └──────────── preempted

``preempted`` is transient: an evicted job passes through it (recorded as an event) and goes
back to ``queued`` with a backoff, or to ``failed`` when its retry limit is spent.
"""

from __future__ import annotations

import enum


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    ADMITTED = "admitted"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    PREEMPTED = "preempted"


FINAL_STATES: frozenset[JobStatus] = frozenset(
    {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED}
)
ACTIVE_STATES: frozenset[JobStatus] = frozenset({JobStatus.ADMITTED, JobStatus.RUNNING})

TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.QUEUED: frozenset({JobStatus.ADMITTED, JobStatus.FAILED, JobStatus.CANCELLED}),
    JobStatus.ADMITTED: frozenset(
        {
            JobStatus.RUNNING,
            JobStatus.SUCCEEDED,
            JobStatus.FAILED,
            JobStatus.CANCELLED,
            JobStatus.PREEMPTED,
        }
    ),
    JobStatus.RUNNING: frozenset(
        {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.PREEMPTED}
    ),
    JobStatus.PREEMPTED: frozenset({JobStatus.QUEUED, JobStatus.FAILED, JobStatus.CANCELLED}),
    JobStatus.SUCCEEDED: frozenset(),
    JobStatus.FAILED: frozenset(),
    JobStatus.CANCELLED: frozenset(),
}


def is_allowed(source: JobStatus, target: JobStatus) -> bool:
    return target in TRANSITIONS[source]


def is_final(status: JobStatus) -> bool:
    return status in FINAL_STATES
