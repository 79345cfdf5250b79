"""Wake the scheduler loop when another process changed jobs: PostgreSQL LISTEN/NOTIFY.

API processes send ``NOTIFY yushan_jobs`` in every transaction that submits or cancels a job
(:mod:`store.notify`); :class:`JobChangeListener` holds one extra connection that LISTENs on
that channel and calls the loop's :meth:`~scheduler.loop.SchedulerLoop.notify` for each
notification. PostgreSQL delivers a notification only after its transaction committed, so the
woken iteration sees the change.

Robustness: if the connection breaks, notifications sent meanwhile are lost, so the listener
wakes the loop once it is back (the iteration then reads the current state) and reconnects with
backoff; the loop's safety tick bounds the delay should the listener stay down. SQLite has no
such channel: there the API and the loop share a process and signal in-process.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable

import psycopg
from sqlalchemy.engine import make_url

from store.notify import CHANNEL

log = logging.getLogger(__name__)


def libpq_url(database_url: str) -> str:
    """A SQLAlchemy PostgreSQL URL (``postgresql+psycopg://...``) as a libpq connection URI."""
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


class JobChangeListener:
    """A thread LISTENing on :data:`store.notify.CHANNEL`; ``on_change`` runs per wake-up."""

    def __init__(
        self,
        database_url: str,
        on_change: Callable[[], None],
        *,
        poll_seconds: float = 1.0,
        backoff_max: float = 5.0,
    ) -> None:
        self.conninfo = libpq_url(database_url)
        self.on_change = on_change
        self.poll_seconds = poll_seconds
        self.backoff_max = backoff_max
        self.listening = threading.Event()
        self.notifications = 0
        self.reconnects = 0
        """Connections made (the first one included)."""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> JobChangeListener:
        self._thread = threading.Thread(target=self._run, name="yushan-listen", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def __enter__(self) -> JobChangeListener:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                self._listen()
                failures = 0
            except psycopg.Error as error:
                self.listening.clear()
                failures += 1
                delay = random.random() * min(self.backoff_max, 0.1 * 2.0**failures)
                log.warning("LISTEN %s failed (%s); retrying in %.1f s", CHANNEL, error, delay)
                self._stop.wait(delay)

    def _listen(self) -> None:
        with psycopg.connect(self.conninfo, autocommit=True) as connection:
            connection.execute(f"LISTEN {CHANNEL}")
            self.reconnects += 1
            self.listening.set()
            self.on_change()  # whatever changed while nobody listened
            while not self._stop.is_set():
                for _notify in connection.notifies(timeout=self.poll_seconds):
                    self.notifications += 1
                    self.on_change()
