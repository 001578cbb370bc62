"""Renders the Deployment that runs an API's replicas. No I/O here.

One container, ``api``, runs ``python -m cortex.runtime --any-path`` on port 8888 with the part
of the spec a replica runs in the environment variable ``CORTEX_API_SPEC`` (:func:`pod_spec`:
predictor, compute, project, the concurrency limit, the request timeout; a long one continues
in ``CORTEX_API_SPEC_1``, ... since Linux execs no process with one variable over 128 KiB, see
:func:`cortex.contracts.spec_env_parts`) and the project folder at ``/mnt/project``.
Everything else (autoscaling, the rest of networking, update strategy) stays out of the pod
template, so changing it never replaces a pod: the route chooses the path (the runtime answers a
POST on any path, ``--any-path``), the autoscaler the replicas. The template's annotation
``cortex.dev/spec-hash`` is :func:`pod_hash`, a hash of the rendered pod spec, so the status can
tell a rollout's new pods from its old ones. The project gets there in one of two ways:

- ``spec.project.configMap`` set (what ``cortex deploy`` uploads): the ConfigMap holds the
  project folder as one gzipped tar archive under the binary key ``project.tar.gz``
  (:data:`PROJECT_ARCHIVE_KEY`). ConfigMap keys cannot contain ``/``, so a plain ConfigMap could
  only hold a flat folder; the archive keeps subfolders and binary files, and compression stretches
  the 1 MiB object limit. An init container ``project`` (same image, ``python -m cortex.unpack``)
  unpacks it into an ``emptyDir`` that the ``api`` container mounts read-only at
  ``/mnt/project``; it takes files and folders only, below the folder, up to 1 GiB (see
  :mod:`cortex.unpack`).
- otherwise the code is baked into the image at ``/mnt/project`` (``predictor.image``).

Dependencies (``predictor.dependencies``): a second init container, ``dependencies``, runs
``python -m cortex.install`` in the project folder: pip installs its requirements file into the
``emptyDir`` ``/mnt/deps``, which the ``api`` container mounts read-only and has on its
``PYTHONPATH``, then bash runs its ``dependencies.sh``; a missing file is skipped (the operator
cannot see the folder, so it is always rendered). pip's output is that container's log. Init
containers finish before the ``api`` container starts, so the install counts against neither
the startup probe nor readiness: a pod installs for as long as it takes, not ready meanwhile.
It is the slow path, paid at every pod start; an image with the packages is the fast one
(``docs/images.md``). pip's ``--target`` does not see the image's packages, so a requirement
already in the image is installed again: list only what the image lacks.

Resources: requests from ``compute``; a memory limit equal to the memory request (a replica that
outgrows it is OOM-killed instead of starving its neighbours); no CPU limit (CFS throttling adds
latency, and requests already share CPU fairly); GPUs (``nvidia.com/gpu``) as equal requests and
limits, with the GPU toleration, the settings' node selector, tolerations and runtime class, and
a memory-backed ``/dev/shm`` of the settings' size (a container's own is 64 MiB, too small for
PyTorch data loaders and NCCL). Environment values are escaped (``$`` -> ``$$``) so they reach
the process verbatim: Kubernetes would expand ``$(VAR)`` in them; ``predictor.env_refs`` become
``valueFrom`` references to a key of a Secret or ConfigMap, so the values are never in the spec.

Identity: the pod runs as the image's numeric ``USER`` or as the UID the cluster assigns
(OpenShift's restricted SCC picks one per namespace), never a fixed UID, with ``runAsNonRoot``, the
``RuntimeDefault`` seccomp profile, no privilege escalation and no capabilities. Both containers
have a read-only root filesystem: what the runtime and the predictor's libraries write goes to two
``emptyDir`` volumes, ``/tmp`` (``TMPDIR``) and ``/mnt/home`` (``HOME``, so ``~/.cache`` and what
defaults to it: ``HF_HOME``, ``TORCH_HOME``, ``XDG_CACHE_HOME``), and ``PYTHONDONTWRITEBYTECODE``
keeps Python from trying to write ``__pycache__`` next to the code. A variable the image sets for a
library (``HF_HOME=/models``) stays, and ``predictor.env`` wins over these. Without
``predictor.service_account`` it runs as the namespace's ``default`` ServiceAccount with no API
token mounted (the runtime never calls the API server); with one, the pod runs as it and that
ServiceAccount's own ``automountServiceAccountToken`` decides (a predictor given an identity may
need its token). Replicas are spread over nodes, softly (``topologySpreadConstraints`` with
``ScheduleAnyway``, per ReplicaSet: ``pod-template-hash``).

Probes (see DESIGN.md section 3: ``/healthz`` answers as soon as the server listens, model loading
runs beside it; ``/readyz`` answers 200 only once ``__init__`` finished):

- startup ``/healthz`` every 5 s, 60 failures allowed: 5 minutes for imports and binding the port;
- readiness ``/readyz`` every 5 s, out of the Service after 2 failures, back after 1 success;
  model loading has no deadline (a big download may take long), the pod is simply not ready;
- liveness ``/healthz`` every 10 s after 30 s, restarted after 6 failures (a minute unanswered),
  so a predictor holding the GIL for a while is not killed for it.

Draining: ``preStop`` sleeps 5 s (the kubelet's ``sleep`` action with the ``sleep_action``
setting, Kubernetes >= 1.30, else ``exec sleep``), so endpoints controllers and ingresses stop
sending before the runtime gets SIGTERM; the runtime then finishes in-flight requests (its own
grace period is 30 s) within ``terminationGracePeriodSeconds`` (60 s).

``spec.replicas`` is what the ``RealtimeAPI``'s ``/scale`` subresource asks for (the HPA targets
the API object, not the Deployment), ``init_replicas`` until something scaled it: the operator
is the Deployment's one writer. ``progressDeadlineSeconds`` (10 minutes) is when a rollout that
makes no progress counts as stuck (status ``error (rollout stuck)``).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from cortex import contracts
from cortex.k8s import context, labels
from cortex.spec import EnvRef, RealtimeAPI

__all__ = [
    "CONTAINER_NAME",
    "DEPS_DIR",
    "GPU_RESOURCE",
    "PROJECT_ARCHIVE_KEY",
    "PROJECT_DIR",
    "SHM_DIR",
    "SPEC_ENV",
    "container_command",
    "pod_hash",
    "pod_spec",
    "render_deployment",
]

CONTAINER_NAME = "api"
PROJECT_DIR = "/mnt/project"
PROJECT_ARCHIVE_KEY = "project.tar.gz"
SPEC_ENV = "CORTEX_API_SPEC"
GPU_RESOURCE = "nvidia.com/gpu"
SHM_DIR = "/dev/shm"
TERMINATION_GRACE_SECONDS = 60
PRE_STOP_SLEEP_SECONDS = 5
PROGRESS_DEADLINE_SECONDS = 600

_ARCHIVE_DIR = "/mnt/project-archive"
DEPS_DIR = "/mnt/deps"
_TMP_DIR = "/tmp"
_HOME_DIR = "/mnt/home"
# Where a read-only root filesystem leaves Python and libraries room to write.
_SCRATCH_ENV = {"HOME": _HOME_DIR, "TMPDIR": _TMP_DIR, "PYTHONDONTWRITEBYTECODE": "1"}


def container_command(api: RealtimeAPI) -> list[str]:
    """The runtime's command line: spec from the environment, project folder, port."""
    args = contracts.RuntimeArgs(
        spec_env=SPEC_ENV, api=api.name, project_dir=PROJECT_DIR, port=labels.PORT, any_path=True
    )
    return contracts.runtime_command(args)


def pod_spec(api: RealtimeAPI) -> dict[str, Any]:
    """What a replica runs of the spec: predictor (but its dependencies), compute, project, its
    concurrency limit and its request timeout (``networking.timeout``: the runtime answers 504
    when it passes).

    The runtime ignores the concurrency target; it is set to a value the limit allows, so this
    part validates on its own and changing the target changes no pod.
    """
    parts: dict[str, Any] = {
        "predictor": True,
        "compute": True,
        "project": True,
        "networking": {"timeout"},
    }
    # The dependencies are the init container's: in place before the runtime starts, where
    # the runtime checks the project folder for every file a spec names.
    # Fields it does not use that a later release added are left out: no pod changes with an
    # upgrade of cortex (the runtime fills their defaults).
    unused = api.unused_fields()
    done = {**unused, "predictor": {"dependencies", *unused.get("predictor", ())}}
    spec = api.model_dump(mode="json", by_alias=True, include=parts, exclude=done)
    limit = api.autoscaling.max_replica_concurrency
    predictor = api.predictor
    target = min(limit, predictor.processes_per_replica * predictor.threads_per_process)
    spec["autoscaling"] = {"max_replica_concurrency": limit, "target_replica_concurrency": target}
    return spec


def _verbatim(value: str) -> str:
    """Escapes Kubernetes' ``$(VAR)`` expansion: ``$$`` reads back as ``$``, nothing else moves."""
    return value.replace("$", "$$")


def _value_from(ref: EnvRef) -> dict[str, Any]:
    selector: dict[str, Any] = {"name": ref.secret or ref.config_map, "key": ref.key}
    if ref.optional:
        selector["optional"] = True
    return {"secretKeyRef" if ref.secret else "configMapKeyRef": selector}


def _env(api: RealtimeAPI) -> list[dict[str, Any]]:
    spec = json.dumps(pod_spec(api), sort_keys=True, separators=(",", ":"))
    predictor = api.predictor
    scratch = {**_SCRATCH_ENV, "PYTHONPATH": DEPS_DIR}
    user: dict[str, dict[str, Any]] = {k: {"value": v} for k, v in scratch.items()}
    user |= {k: {"value": _verbatim(v)} for k, v in predictor.env.items()}
    if "PYTHONPATH" in predictor.env:  # the user's folders first, the installed packages kept
        user["PYTHONPATH"] = {"value": _verbatim(f"{predictor.env['PYTHONPATH']}:{DEPS_DIR}")}
    user |= {k: {"valueFrom": _value_from(ref)} for k, ref in predictor.env_refs.items()}
    # Sorted: a resource read back from the API server has its map keys in sorted order anyway.
    return [
        *(
            {"name": name, "value": _verbatim(part)}
            for name, part in contracts.spec_env_parts(SPEC_ENV, spec)
        ),
        *({"name": name, **user[name]} for name in sorted(user)),
    ]


def _resources(api: RealtimeAPI) -> dict[str, Any]:
    """Requests from ``compute``; memory and GPUs also as limits (equal), never a CPU limit."""
    compute = api.compute
    requests: dict[str, Any] = {}
    limits: dict[str, Any] = {}
    if compute.cpu is not None:
        requests["cpu"] = compute.cpu
    if compute.mem is not None:
        requests["memory"] = limits["memory"] = compute.mem
    if compute.gpu > 0:
        requests[GPU_RESOURCE] = limits[GPU_RESOURCE] = str(compute.gpu)
    resources: dict[str, Any] = {}
    if requests:
        resources["requests"] = requests
    if limits:
        resources["limits"] = limits
    return resources


def _probe(path: str, **timing: int) -> dict[str, Any]:
    return {"httpGet": {"path": path, "port": labels.PORT_NAME}, **timing}


def _container_security() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": True,
    }


def _pre_stop(settings: context.OperatorSettings) -> dict[str, Any]:
    if settings.sleep_action:
        return {"sleep": {"seconds": PRE_STOP_SLEEP_SECONDS}}
    return {"exec": {"command": ["sleep", str(PRE_STOP_SLEEP_SECONDS)]}}


def _shm_size(api: RealtimeAPI, settings: context.OperatorSettings) -> str | None:
    return settings.gpu_shm_size if api.compute.gpu > 0 else None


def _container(api: RealtimeAPI, image: str, settings: context.OperatorSettings) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": CONTAINER_NAME,
        "image": image,
        "command": container_command(api),
        "env": _env(api),
        "ports": [{"name": labels.PORT_NAME, "containerPort": labels.PORT, "protocol": "TCP"}],
        "resources": _resources(api),
        "startupProbe": _probe("/healthz", periodSeconds=5, timeoutSeconds=3, failureThreshold=60),
        "readinessProbe": _probe(
            "/readyz", periodSeconds=5, timeoutSeconds=3, successThreshold=1, failureThreshold=2
        ),
        "livenessProbe": _probe(
            "/healthz",
            initialDelaySeconds=30,
            periodSeconds=10,
            timeoutSeconds=5,
            failureThreshold=6,
        ),
        "lifecycle": {"preStop": _pre_stop(settings)},
        "securityContext": _container_security(),
    }
    mounts = []
    if api.project.config_map is not None:
        mounts.append({"name": "project", "mountPath": PROJECT_DIR, "readOnly": True})
    mounts.append({"name": "deps", "mountPath": DEPS_DIR, "readOnly": True})
    mounts += [{"name": "tmp", "mountPath": _TMP_DIR}, {"name": "home", "mountPath": _HOME_DIR}]
    if _shm_size(api, settings) is not None:
        mounts.append({"name": "shm", "mountPath": SHM_DIR})
    container["volumeMounts"] = mounts
    return container


def _unpack_container(image: str) -> dict[str, Any]:
    """The init container that unpacks the project archive of the ConfigMap."""
    archive = f"{_ARCHIVE_DIR}/{PROJECT_ARCHIVE_KEY}"
    return {
        "name": "project",
        "image": image,
        "command": contracts.unpack_command(archive, PROJECT_DIR),
        # It writes only below the project folder: no scratch volumes needed.
        "env": [{"name": "PYTHONDONTWRITEBYTECODE", "value": "1"}],
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
        "securityContext": _container_security(),
        "volumeMounts": [
            {"name": "project-archive", "mountPath": _ARCHIVE_DIR, "readOnly": True},
            {"name": "project", "mountPath": PROJECT_DIR},
        ],
    }


def _deps_container(api: RealtimeAPI, image: str) -> dict[str, Any]:
    """The init container that installs ``predictor.dependencies`` into ``/mnt/deps``; the
    api container's resources, since pip may need as much (a pod reserves the larger of the
    two, not their sum)."""
    deps = api.predictor.dependencies
    mounts = [{"name": "project", "mountPath": PROJECT_DIR, "readOnly": True}]
    mounts = mounts if api.project.config_map is not None else []
    mounts += [
        {"name": "deps", "mountPath": DEPS_DIR},
        {"name": "tmp", "mountPath": _TMP_DIR},
        {"name": "home", "mountPath": _HOME_DIR},
    ]
    return {
        "name": "dependencies",
        "image": image,
        "command": contracts.install_command(PROJECT_DIR, deps.pip, deps.shell, DEPS_DIR),
        "env": [{"name": name, "value": _SCRATCH_ENV[name]} for name in sorted(_SCRATCH_ENV)],
        "resources": _resources(api),
        "securityContext": _container_security(),
        "volumeMounts": mounts,
    }


def _volumes(api: RealtimeAPI, settings: context.OperatorSettings) -> list[dict[str, Any]]:
    volumes: list[dict[str, Any]] = []
    config_map = api.project.config_map
    if config_map is not None:
        volumes += [
            {"name": "project-archive", "configMap": {"name": config_map}},
            {"name": "project", "emptyDir": {}},
        ]
    volumes += [
        {"name": "deps", "emptyDir": {}},
        {"name": "tmp", "emptyDir": {}},
        {"name": "home", "emptyDir": {}},
    ]
    shm = _shm_size(api, settings)
    if shm is not None:
        volumes.append({"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": shm}})
    return volumes


def _spread(api: RealtimeAPI) -> list[dict[str, Any]]:
    """Replicas over nodes where the scheduler can; a rollout's new pods spread on their own."""
    return [
        {
            "maxSkew": 1,
            "topologyKey": "kubernetes.io/hostname",
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": labels.selector(api)},
            "matchLabelKeys": ["pod-template-hash"],
        }
    ]


def _identity(api: RealtimeAPI) -> dict[str, Any]:
    account = api.predictor.service_account
    if account is None:
        # The runtime never talks to the API server: no token to steal from a replica.
        return {"automountServiceAccountToken": False}
    return {"serviceAccountName": account}


def _pod_spec(api: RealtimeAPI, settings: context.OperatorSettings) -> dict[str, Any]:
    image = api.predictor.image or settings.default_image
    pod: dict[str, Any] = {
        **_identity(api),
        # One Service env var set per Service in the namespace would only slow pod start-up
        # with hundreds of APIs.
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": TERMINATION_GRACE_SECONDS,
        # No runAsUser: the image's numeric USER, or the UID the cluster assigns.
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "topologySpreadConstraints": _spread(api),
    }
    unpack = [_unpack_container(image)] if api.project.config_map is not None else []
    pod["initContainers"] = [*unpack, _deps_container(api, image)]
    pod["containers"] = [_container(api, image, settings)]
    pod["volumes"] = _volumes(api, settings)
    if api.compute.gpu > 0:
        pod |= _gpu_scheduling(settings)
    return pod


def _gpu_scheduling(settings: context.OperatorSettings) -> dict[str, Any]:
    scheduling: dict[str, Any] = {}
    if settings.gpu_runtime_class is not None:
        scheduling["runtimeClassName"] = settings.gpu_runtime_class
    if settings.gpu_node_selector:
        scheduling["nodeSelector"] = dict(settings.gpu_node_selector)
    scheduling["tolerations"] = [
        {"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"},
        *(dict(toleration) for toleration in settings.gpu_tolerations),
    ]
    return scheduling


def pod_hash(pod: dict[str, Any]) -> str:
    """16 hex digits of the SHA-256 of a rendered pod spec: equal pod specs, equal hashes."""
    text = json.dumps(pod, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def render_deployment(
    api: RealtimeAPI,
    owner: context.Owner,
    settings: context.OperatorSettings,
    replicas: int | None = None,
) -> dict[str, Any]:
    """The ``apps/v1`` Deployment ``api-<name>`` with ``replicas`` (None: ``init_replicas``)."""
    rolling = api.update_strategy
    pod = _pod_spec(api, settings)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": labels.metadata(api, owner),
        "spec": {
            "replicas": api.init_replicas if replicas is None else replicas,
            "progressDeadlineSeconds": PROGRESS_DEADLINE_SECONDS,
            "selector": {"matchLabels": labels.selector(api)},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {
                    "maxSurge": rolling.max_surge,
                    "maxUnavailable": rolling.max_unavailable,
                },
            },
            "template": {
                "metadata": {
                    "labels": labels.labels(api),
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(labels.PORT),
                        "prometheus.io/path": "/metrics",
                        labels.ANNOTATION_SPEC_HASH: pod_hash(pod),
                    },
                },
                "spec": pod,
            },
        },
    }
