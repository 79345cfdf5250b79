"""Kubernetes adapter: decisions become pods, pod and node events become observations.

Also holds the embedded simulated cluster (``k8s.sim``), a Core v1 subset served over real HTTP
so that the adapter talks to it exactly as to a real API server.
"""
