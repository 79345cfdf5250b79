"""``yushan simulate``: replay a job trace on a virtual clock (:mod:`scheduler.simulate`).

A server-side command, yet apart from :mod:`cli.server`: the simulator needs the scheduling
cycle only, not the API, the database or the Kubernetes client, so ``yushan simulate`` imports
this module alone and starts in a fraction of a second (``tests/cli/test_startup.py``).
"""

from __future__ import annotations

from typing import Any

from scheduler import simulate


def register(subparsers: Any) -> None:
    """Add the ``simulate`` subcommand to the ``yushan`` parser."""
    sim = subparsers.add_parser("simulate", help="replay a job trace on a virtual clock")
    simulate.configure_parser(sim)
    sim.set_defaults(func=simulate.run)
