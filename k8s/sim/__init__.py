"""Embedded simulated Kubernetes cluster: a Core v1 subset served over real HTTP.

Start one with :class:`EmbeddedCluster` (in-process) or ``python -m k8s.sim`` (standalone);
nodes come from a YAML file (schema in :mod:`k8s.sim.nodes`), pods are driven through their
lifecycle by a simulated kubelet (:mod:`k8s.sim.kubelet`), and faults can be injected through
:attr:`EmbeddedCluster.faults` (:mod:`k8s.sim.faults`).

Pod annotations understood by the simulation: ``sim.yushan.io/duration-seconds`` (run time,
default 60) and ``sim.yushan.io/exit-code`` (non-zero fails the pod).
"""

from k8s.sim.cluster import EmbeddedCluster
from k8s.sim.errors import ApiError, ClusterConfigError, SimError
from k8s.sim.faults import FaultInjector
from k8s.sim.nodes import DEFAULT_NODES_FILE, NodeSpec, load_node_specs
from k8s.sim.objects import DURATION_ANNOTATION, EXIT_CODE_ANNOTATION

__all__ = [
    "DEFAULT_NODES_FILE",
    "DURATION_ANNOTATION",
    "EXIT_CODE_ANNOTATION",
    "ApiError",
    "ClusterConfigError",
    "EmbeddedCluster",
    "FaultInjector",
    "NodeSpec",
    "SimError",
    "load_node_specs",
]
