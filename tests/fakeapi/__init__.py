"""A fake Kubernetes API server for tests: kmock 0.8 with a stateful store behind it.

``FakeCluster`` runs it over real HTTP on 127.0.0.1 in a thread and writes a kubeconfig, so
kopf, kubectl, the ``kubernetes`` client and our own code all talk to it as to a cluster.
What it emulates:

- discovery (incl. CRDs) and a minimal ``/openapi/v3`` (kubectl validates on the server);
- CRUD with uid/resourceVersion/generation stamping, ``generateName``, resourceVersion
  preconditions, dry runs; merge, JSON and strategic-merge patches (415 for strategic merge on
  custom resources); the status subresource; CRD schemas (pruning, defaults, validation);
- server-side apply (``apply-patch+yaml``: ``fieldManager``, ``force``, conflicts, removal of
  fields no longer applied, no-op re-applies, ``/status``) and ``managedFields`` for every
  write (``Update`` entries by ``fieldManager`` or the User-Agent);
- list/watch with resourceVersions, label and field selectors, ``kubectl get`` tables, watch
  expiry (410 ``Expired`` outside the window or after ``compact``);
- defaulting and validation of Deployments, ReplicaSets and Pods (the real messages, canonical
  quantities), and admission rejections tests inject (``reject``: quota, pod-security, webhook);
- finalizers, garbage collection by ownerReferences, namespace deletion; Deployment and
  ReplicaSet controllers (rollouts, history, the real status and conditions) on a clock tests
  move (``advance``), with pods tests drive (``set_pods``); the ``scale`` subresource
  (Deployments, ReplicaSets, CRDs); HPA statuses tests set (``set_hpa_status``);
- pod logs (``append_log``; ``container``, ``follow``, ``tailLines``, ``sinceSeconds``,
  ``timestamps``) and the service proxy to upstreams tests name (``route_service``);
- users by bearer token (``add_user``, ``kubeconfig_for``; no token: the admin; ``token=``:
  401 without one), RBAC from the installed Roles/ClusterRoles and their bindings, the
  OwnerReferencesPermissionEnforcement admission plugin, RBAC-worded 403s (also ``deny``), and
  a log of every resource request by user (``requests``);
- faults tests inject (``inject``: 500, 503, 504, 409, 429 with Retry-After, a slow server,
  for N requests or for a while) and watches they break (``disconnect_watches``) or expire
  (``expire_watches``).

Layers: ``errors``, ``selectors``, ``merging``, ``schemas``, ``fieldsets``, ``clock``,
``conditions``, ``quantity`` <- ``apply``, ``defaults`` <- ``validation``, ``admission`` <-
``store`` <- ``owners``, ``rollout``, ``pods`` <- ``progress`` <- ``deployments``,
``replicasets`` <- ``workloads``, ``gateways`` <- ``controllers``, ``scale``, ``hpa``,
``rbac`` <- ``access``, ``faults``, ``streams``, ``proxy`` <- ``server`` <- ``cluster``.
"""

from tests.fakeapi.cluster import FakeCluster, kubeconfig, wait_for
from tests.fakeapi.pods import POD_STATES
from tests.fakeapi.server import FakeKubernetes

__all__ = ["POD_STATES", "FakeCluster", "FakeKubernetes", "kubeconfig", "wait_for"]
