"""Gang placement on the free-capacity index."""

from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.model import Demand, NodeState
from scheduler.placement import ClusterState
from tests.scheduler.builders import demand

LABEL = "topology.yushan.io/block"


def node(name: str, gpus: int = 8, flavor: str = "a100", foreign: int = 0) -> NodeState:
    return NodeState(name, flavor, demand(gpus), {}, True, Demand(foreign, 0, 0))


def test_gang_uses_fewest_nodes_and_puts_the_rest_on_the_tightest_node() -> None:
    cluster = ClusterState([node("n0"), node("n1"), node("n2", foreign=4)], [], LABEL)
    placement = cluster.place("a100", 3, demand(4))
    assert placement is not None
    assert sorted(placement) == ["n0", "n0", "n2"]


def test_all_or_nothing_when_slots_are_missing() -> None:
    cluster = ClusterState([node("n0", foreign=2), node("n1", foreign=2)], [], LABEL)
    assert cluster.free_gpus("a100") == 12
    assert cluster.place("a100", 2, demand(8)) is None
    assert cluster.place("a100", 2, demand(6)) == ("n0", "n1")


def test_allocation_release_and_closing_update_the_index() -> None:
    cluster = ClusterState([node("n0"), node("h0", flavor="h100")], [], LABEL)
    cluster.allocate(("n0",), demand(6))
    assert cluster.free_gpus("a100") == 2
    assert cluster.free_gpus("h100") == 8
    assert cluster.close("n0")
    assert cluster.place("a100", 1, demand(1)) is None
    cluster.reopen("n0")
    cluster.release(("n0",), demand(6))
    assert cluster.place("a100", 1, demand(8)) == ("n0",)
    assert cluster.oversubscribed() == []
    cluster.allocate(("n0",), demand(8))
    cluster.allocate(("n0",), demand(1))
    assert cluster.oversubscribed() == ["n0"]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["allocate", "release", "close", "reopen"]),
            st.sampled_from(["n0", "n1", "n2", "h0"]),
            st.integers(1, 8),
        ),
        max_size=30,
    )
)
def test_free_gpus_and_slots_follow_every_change(
    changes: list[tuple[str, str, int]],
) -> None:
    """The kept totals and the remembered slot counts always equal a count over the nodes."""
    nodes = [node("n0"), node("n1", foreign=3), node("n2", gpus=4), node("h0", flavor="h100")]
    cluster = ClusterState(nodes, [], LABEL)
    held: dict[str, list[int]] = {n.name: [] for n in nodes}
    for change, name, gpus in changes:
        if change == "allocate":
            cluster.allocate((name,), demand(gpus))
            held[name].append(gpus)
        elif change == "release" and held[name]:
            cluster.release((name,), demand(held[name].pop()))
        elif change == "close":
            cluster.close(name)
        elif change == "reopen":
            cluster.reopen(name)
        for flavor in ("a100", "h100"):
            free = [max(g, 0) for g in cluster.free_gpus_by_node(flavor).values()]
            assert cluster.free_gpus(flavor) == sum(free)
            for per_worker in range(1, 9):
                assert cluster.gpu_slots(flavor, per_worker) == sum(g // per_worker for g in free)
