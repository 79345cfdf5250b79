"""Group commit for job submissions.

Alone, a submission costs a whole transaction (BEGIN, the fit check, the job and its event,
NOTIFY, COMMIT) and a database session, and under load the requests of one API process arrive
together. :class:`SubmissionWriter` owns one thread that takes every submission waiting, runs
each through :func:`store.jobs.submit` in one session and commits them together: one INSERT
per table (Core, not the ORM's unit of work), one COMMIT, one NOTIFY and one wake-up of the
scheduler for the whole group. Each caller's future then
resolves with its own outcome, and only after the commit, so a 201 still means "stored".

Failure isolation:

* a submission refused by a check (unknown tenant or flavor, no fit, a limit, a dependency)
  raises before it adds rows, so it fails alone and the group goes on;
* any other error (the database refusing a row, a lost connection) rolls the group back, and
  every submission of it is retried in a transaction of its own, so one bad submission never
  fails its neighbours and none is stored twice;
* a submission with an ``Idempotency-Key`` always runs alone: its replay detection relies on a
  savepoint and the unique constraint on (user, key).

Idle, the thread blocks on its queue; it waits for nothing once work is there, so a lone
submission is written at once (no batching delay) and groups form only under load.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from functools import partial

from sqlalchemy.orm import Session

from store import jobs
from store.db import SessionFactory, transaction
from store.errors import StoreError

log = logging.getLogger(__name__)

MAX_GROUP = 128
"""Submissions committed together at most: bounds a group's latency and its transaction."""


@dataclass(slots=True)
class _Submission:
    request: jobs.JobRequest
    user: str
    job_id: str
    idempotency_key: str | None
    future: Future[jobs.Submitted] = field(default_factory=Future)

    def run(
        self,
        session: Session,
        memo: jobs.FactsMemo | None = None,
        pending: jobs.PendingRows | None = None,
    ) -> jobs.Submitted:
        return jobs.submit(
            session,
            self.request,
            user=self.user,
            job_id=self.job_id,
            idempotency_key=self.idempotency_key,
            memo=memo,
            pending=pending,
        )


class SubmissionWriter:
    """One writer thread per API process; :meth:`submit` is safe from any thread."""

    def __init__(self, sessions: SessionFactory, *, max_group: int = MAX_GROUP) -> None:
        self._sessions = sessions
        self._max_group = max_group
        self._queue: queue.SimpleQueue[_Submission | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.groups = 0
        """Transactions committed with more than one submission (for tests and benchmarks)."""

    def submit(
        self,
        request: jobs.JobRequest,
        *,
        user: str,
        job_id: str,
        idempotency_key: str | None = None,
    ) -> Future[jobs.Submitted]:
        submission = _Submission(request, user, job_id, idempotency_key)
        with self._lock:
            if self._thread is None:  # first use, or after close(): an app may start again
                self._queue = queue.SimpleQueue()
                self._thread = threading.Thread(
                    target=self._run, args=(self._queue,), name="yushan-submissions", daemon=True
                )
                self._thread.start()
            self._queue.put(submission)
        return submission.future

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, then stop the thread (a later :meth:`submit` starts another)."""
        with self._lock:
            thread, self._thread = self._thread, None
            if thread is not None:
                self._queue.put(None)
        if thread is not None:
            thread.join(timeout)

    # -- the writer thread -----------------------------------------------------------------

    def _run(self, submissions: queue.SimpleQueue[_Submission | None]) -> None:
        while True:
            first = submissions.get()
            if first is None:
                return
            group = [first]
            stop = False
            while len(group) < self._max_group:
                try:
                    more = submissions.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                group.append(more)
            self._write(group)
            if stop:
                return

    def _write(self, group: list[_Submission]) -> None:
        alone = [s for s in group if s.idempotency_key is not None]
        together = [s for s in group if s.idempotency_key is None]
        if len(together) > 1:
            try:
                self._write_together(together)
            except Exception:  # any failure: retry each submission alone
                log.info("a group of %d submissions failed; retrying each alone", len(together))
                alone += together
        else:
            alone += together
        for submission in alone:
            _resolve(submission, partial(self._write_alone, submission))

    def _write_together(self, group: list[_Submission]) -> None:
        outcomes: list[tuple[_Submission, jobs.Submitted | StoreError]] = []
        with transaction(self._sessions) as session, session.no_autoflush:
            # The group's jobs and events go in at the end, one Core executemany per table
            # (a check that counts or looks up jobs inserts those pending first, see
            # store.jobs.submit); alike submissions read the facts their checks need once.
            memo: jobs.FactsMemo = {}
            pending = jobs.PendingRows()
            for submission in group:
                try:
                    outcomes.append((submission, submission.run(session, memo, pending)))
                except StoreError as refused:
                    outcomes.append((submission, refused))
            pending.insert(session)
            session.flush()
        self.groups += 1
        for submission, outcome in outcomes:
            if isinstance(outcome, StoreError):
                submission.future.set_exception(outcome)
            else:
                submission.future.set_result(outcome)

    def _write_alone(self, submission: _Submission) -> jobs.Submitted:
        with transaction(self._sessions) as session:
            return submission.run(session)


def _resolve(submission: _Submission, write: Callable[[], jobs.Submitted]) -> None:
    try:
        submission.future.set_result(write())
    except Exception as error:  # handed to the waiting request
        submission.future.set_exception(error)
