"""A fake Kubernetes API server for tests: kmock 0.8 with a stateful store behind it.

``FakeCluster`` runs it over real HTTP on 127.0.0.1 in a thread and writes a kubeconfig, so
kopf, kubectl and our own client all talk to it as to a cluster. What it emulates: discovery
(incl. CRDs), CRUD with uid/resourceVersion/generation stamping, resourceVersion preconditions,
merge/JSON/strategic-merge patches (415 for strategic merge on custom resources), the status
subresource, CRD schemas (pruning, defaults, validation), list/watch with resourceVersions,
label and field selectors, finalizers, dry runs, ``kubectl get`` tables, garbage collection by
ownerReferences, and a tiny Deployment controller with pods that tests can drive.
Layers: ``errors``, ``selectors``, ``merging``, ``schemas`` <- ``store`` <- ``controllers``
<- ``server`` <- ``cluster``.
"""

from tests.fakeapi.cluster import FakeCluster, kubeconfig, wait_for
from tests.fakeapi.controllers import POD_STATES
from tests.fakeapi.server import FakeKubernetes

__all__ = ["POD_STATES", "FakeCluster", "FakeKubernetes", "kubeconfig", "wait_for"]
