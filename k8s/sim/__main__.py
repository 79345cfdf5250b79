"""Run the embedded cluster standalone until SIGTERM or Ctrl-C.

``python -m k8s.sim --nodes FILE --port P --kubeconfig PATH --time-scale X``
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from k8s.sim.cluster import EmbeddedCluster
from k8s.sim.errors import SimError


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m k8s.sim", description=__doc__)
    parser.add_argument("--nodes", type=Path, default=None, help="nodes YAML file")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--kubeconfig", type=Path, default=None, help="write a kubeconfig here")
    parser.add_argument("--time-scale", type=float, default=1.0)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    stop = threading.Event()

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        cluster = EmbeddedCluster(
            args.nodes, time_scale=args.time_scale, host=args.host, port=args.port
        )
        cluster.start()
    except (SimError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    try:
        if args.kubeconfig is not None:
            cluster.write_kubeconfig(args.kubeconfig)
        print(f"embedded cluster serving at {cluster.url}", flush=True)
        stop.wait()
    finally:
        cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
