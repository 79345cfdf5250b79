"""Free capacity per node and gang placement (all workers or none).

Free capacity is allocatable minus foreign pods minus Yushan's running jobs. Nodes of each flavor
are indexed by their number of free GPUs so that the common cases cost O(GPUs per node), not
O(nodes):

* a quick necessary test — do the nodes have ``workers`` slots of the per-worker GPU count at
  all? — rejects most jobs that cannot start;
* a job that fits on one node goes to the node it fills best (best fit, least fragmentation);
* a gang that needs several nodes is packed onto as few nodes as possible, preferring nodes that
  share a topology block, and within the chosen set the last worker goes to the tightest node.

Cordoned or not-ready nodes and nodes of other flavors are never used.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from scheduler.model import Demand, JobState, NodeState


class _Free:
    __slots__ = ("block", "cpu", "flavor", "gpu", "memory", "name", "open")

    def __init__(self, node: NodeState, block_label: str) -> None:
        self.name = node.name
        self.flavor = node.flavor
        self.block = node.labels.get(block_label)
        self.gpu = node.allocatable.gpu - node.foreign.gpu
        self.cpu = node.allocatable.cpu_milli - node.foreign.cpu_milli
        self.memory = node.allocatable.memory_bytes - node.foreign.memory_bytes
        self.open = node.schedulable and node.flavor is not None

    def slots(self, demand: Demand, cap: int) -> int:
        """How many workers of ``demand`` fit here, at most ``cap``."""
        count = cap
        for free, need in ((self.gpu, demand.gpu), (self.cpu, demand.cpu_milli)):
            if need > 0:
                count = min(count, free // need)
        if demand.memory_bytes > 0:
            count = min(count, self.memory // demand.memory_bytes)
        return max(0, count)


class ClusterState:
    """Mutable free-capacity view of the cluster, updated as the cycle admits jobs."""

    def __init__(
        self, nodes: Iterable[NodeState], running: Iterable[JobState], block_label: str
    ) -> None:
        self._nodes: dict[str, _Free] = {n.name: _Free(n, block_label) for n in nodes}
        self._flavors = frozenset(free.flavor for free in self._nodes.values() if free.flavor)
        self._by_gpu: dict[str, list[dict[str, None]]] = {}
        self._free_total: dict[str, int] = {}
        """Free GPUs of each flavor's open nodes, kept with the index."""
        self._slots: dict[tuple[str, int], int] = {}
        """:meth:`gpu_slots` answers since the index last changed: the cycle asks after every
        job whether anything more fits, and the index changes far less often."""
        for free in self._nodes.values():
            if free.open:
                self._index(free)
        for job in running:
            if job.placement:
                self._charge(job.placement, job.demand, 1)

    # -- index -----------------------------------------------------------------------------

    def _buckets(self, flavor: str, size: int) -> list[dict[str, None]]:
        buckets = self._by_gpu.setdefault(flavor, [])
        while len(buckets) <= size:
            buckets.append({})
        return buckets

    def _index(self, free: _Free) -> None:
        assert free.flavor is not None
        gpus = max(free.gpu, 0)
        self._buckets(free.flavor, gpus)[gpus][free.name] = None
        self._free_total[free.flavor] = self._free_total.get(free.flavor, 0) + gpus
        self._slots.clear()

    def _unindex(self, free: _Free) -> None:
        assert free.flavor is not None
        gpus = max(free.gpu, 0)
        del self._by_gpu[free.flavor][gpus][free.name]
        self._free_total[free.flavor] -= gpus
        self._slots.clear()

    def _charge(self, placement: Sequence[str], demand: Demand, sign: int) -> None:
        for name in placement:
            free = self._nodes.get(name)
            if free is None:
                continue
            indexed = free.open
            if indexed:
                self._unindex(free)
            free.gpu -= sign * demand.gpu
            free.cpu -= sign * demand.cpu_milli
            free.memory -= sign * demand.memory_bytes
            if indexed:
                self._index(free)

    # -- queries ---------------------------------------------------------------------------

    def has_nodes(self, flavor: str) -> bool:
        """Whether any node (schedulable or not) belongs to ``flavor``."""
        return flavor in self._flavors

    def free_gpus(self, flavor: str) -> int:
        return self._free_total.get(flavor, 0)

    def gpu_slots(self, flavor: str, gpus_per_worker: int) -> int:
        """Workers of ``gpus_per_worker`` GPUs the open nodes could hold, ignoring CPU/memory."""
        key = (flavor, gpus_per_worker)
        slots = self._slots.get(key)
        if slots is None:
            buckets = self._by_gpu.get(flavor, [])
            if gpus_per_worker <= 0:
                slots = sum(len(nodes) for nodes in buckets) * 1_000_000
            else:
                slots = sum(
                    (size // gpus_per_worker) * len(nodes) for size, nodes in enumerate(buckets)
                )
            self._slots[key] = slots
        return slots

    def node_names(self, flavor: str) -> list[str]:
        return [f.name for f in self._nodes.values() if f.flavor == flavor and f.open]

    def free_gpus_by_node(self, flavor: str) -> dict[str, int]:
        """Free GPUs of each open node of ``flavor``."""
        return {f.name: f.gpu for f in self._nodes.values() if f.flavor == flavor and f.open}

    def free_of(self, name: str) -> Demand:
        free = self._nodes[name]
        return Demand(free.gpu, free.cpu, free.memory)

    def is_open(self, name: str) -> bool:
        node = self._nodes.get(name)
        return node is not None and node.open

    def oversubscribed(self, names: Iterable[str] | None = None) -> list[str]:
        """Nodes whose free capacity went negative (must never happen through the cycle)."""
        nodes = self._nodes.values() if names is None else (self._nodes[n] for n in names)
        return [f.name for f in nodes if f.gpu < 0 or f.cpu < 0 or f.memory < 0]

    # -- changes ---------------------------------------------------------------------------

    def allocate(self, placement: Sequence[str], demand: Demand) -> None:
        self._charge(placement, demand, 1)

    def release(self, placement: Sequence[str], demand: Demand) -> None:
        self._charge(placement, demand, -1)

    def close(self, name: str) -> bool:
        """Take a node out of placement for now; returns whether it was open."""
        free = self._nodes.get(name)
        if free is None or not free.open:
            return False
        self._unindex(free)
        free.open = False
        return True

    def reopen(self, name: str) -> None:
        free = self._nodes[name]
        if not free.open:
            free.open = True
            self._index(free)

    # -- placement -------------------------------------------------------------------------

    def place(self, flavor: str, workers: int, demand: Demand) -> tuple[str, ...] | None:
        """Nodes for every worker of a gang, or ``None`` if the whole gang cannot fit now."""
        if workers <= 0:
            return ()
        if self.gpu_slots(flavor, demand.gpu) < workers:
            return None
        single = self._best_single_node(flavor, workers, demand)
        if single is not None:
            return (single,) * workers
        return self._pack_gang(flavor, workers, demand)

    def _best_single_node(self, flavor: str, workers: int, demand: Demand) -> str | None:
        buckets = self._by_gpu.get(flavor, [])
        first = demand.gpu * workers
        for size in range(first, len(buckets)):
            for name in buckets[size]:
                if self._nodes[name].slots(demand, workers) >= workers:
                    return name
        return None

    def _pack_gang(self, flavor: str, workers: int, demand: Demand) -> tuple[str, ...] | None:
        slots: dict[str | None, list[tuple[int, _Free]]] = {}
        everywhere: list[tuple[int, _Free]] = []
        for size in range(demand.gpu, len(self._by_gpu.get(flavor, []))):
            for name in self._by_gpu[flavor][size]:
                free = self._nodes[name]
                count = free.slots(demand, workers)
                if count > 0:
                    slots.setdefault(free.block, []).append((count, free))
                    everywhere.append((count, free))
        blocks = [
            (sum(c for c, _ in members), block or "", members)
            for block, members in slots.items()
            if block is not None and sum(c for c, _ in members) >= workers
        ]
        if blocks:
            return _fill(min(blocks, key=lambda b: (b[0], b[1]))[2], workers)
        if sum(c for c, _ in everywhere) >= workers:
            return _fill(everywhere, workers)
        return None


def _fill(candidates: list[tuple[int, _Free]], workers: int) -> tuple[str, ...]:
    """Fewest nodes first (largest slot counts), the remainder on the tightest node that fits."""
    ordered = sorted(candidates, key=lambda c: (-c[0], c[1].name))
    placement: list[str] = []
    remaining = workers
    index = 0
    while remaining > 0:
        count, free = ordered[index]
        if count >= remaining:
            tail = [c for c in ordered[index:] if c[0] >= remaining]
            _, tightest = min(tail, key=lambda c: (c[0], c[1].gpu, c[1].name))
            placement.extend([tightest.name] * remaining)
            break
        placement.extend([free.name] * count)
        remaining -= count
        index += 1
    return tuple(placement)
