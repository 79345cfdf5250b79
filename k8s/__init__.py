"""Kubernetes adapter: decisions become pods, pod and node events become observations.

Also holds the embedded simulated cluster (``k8s.sim``), a Core v1 subset served over real HTTP
so that the adapter talks to it exactly as to a real API server.

Modules of the adapter:

* :mod:`k8s.types` — the values exchanged with the scheduler loop (``WorkloadSpec`` in,
  ``NodeInfo`` and ``GangObservation`` out);
* :mod:`k8s.manifests` — pure builders of the Namespace, Service and Pod manifests;
* :mod:`k8s.client` — ``ClusterClient``: connect, dispatch, delete, observe, reconcile, logs;
* :mod:`k8s.watcher` — ``ClusterWatcher``: list+watch cache of pods and nodes, the scheduler
  loop's view of the cluster (no LIST per iteration; its listeners wake the loop);
* :mod:`k8s.observe` — pure folding of API objects into observations and inventory;
* :mod:`k8s.errors` — the ``ClusterError`` hierarchy and the bounded retry policy;
* :mod:`k8s.transport` — JSON requests through the official client's ``ApiClient``;
* :mod:`k8s.doctor` — ``run_doctor``: connection, RBAC and GPU-node checks.
"""
