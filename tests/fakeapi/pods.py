"""Pod statuses as the scheduler and the kubelet report them, for the states tests put pods in.

``pending`` (containers being created), ``ready``, ``image-pull`` (ImagePullBackOff), ``oom``
(restarted after OOMKilled), ``crash`` (CrashLoopBackOff), ``unschedulable`` (no node fits),
``init-crash`` (an init container in CrashLoopBackOff, the pod Pending), ``config-error``
(``CreateContainerConfigError``: a ConfigMap or Secret the container needs is missing) and
``evicted`` (Failed, reason Evicted, with the kubelet's message). Pure.

A container the kernel would refuse to start never gets there: one environment variable longer
than ``MAX_ARG_STRLEN`` (128 KiB, ``NAME=value``) makes ``execve`` fail with "argument list too
long", so a state that starts the containers is ``RunContainerError`` for such a pod instead.
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]

POD_STATES = (
    "pending",
    "ready",
    "image-pull",
    "oom",
    "crash",
    "unschedulable",
    "init-crash",
    "config-error",
    "evicted",
)
UNSCHEDULABLE = "0/3 nodes are available: 3 Insufficient nvidia.com/gpu."
MAX_ARG_STRLEN = 32 * 4096  # Linux: the longest single argument or environment string
EXEC_TOO_LONG = (
    "failed to create containerd task: failed to create shim task: OCI runtime create failed: "
    'runc create failed: unable to start container process: exec: "{command}": argument list '
    "too long: unknown"
)
_RUNNING = ("ready", "oom", "crash")  # the states whose containers have started


def status(state: str, pod: Obj, when: str) -> Obj:
    """The status of ``pod`` in ``state``; ``when`` dates what changes now."""
    if state not in POD_STATES:
        raise ValueError(f"pod state {state!r} is not one of {POD_STATES}")
    spec = pod.get("spec") or {}
    inits = [c.get("name", "") for c in spec.get("initContainers") or []]
    if state == "init-crash" and not inits:
        raise ValueError(f"pod {pod['metadata']['name']} has no init container to crash")
    if state in _RUNNING and _unstartable(spec):
        state = "pending"  # its containers are never created: see _container_status
    scheduled = _condition("PodScheduled", True, when)
    if state == "unschedulable":
        scheduled = _condition("PodScheduled", False, when, "Unschedulable", UNSCHEDULABLE)
        return {"phase": "Pending", "conditions": [scheduled], "qosClass": qos_class(spec)}
    result: Obj = {
        "phase": {"evicted": "Failed"}.get(state, "Running" if state in _RUNNING else "Pending"),
        "conditions": [*_conditions(state, spec, inits, when), scheduled],
        "startTime": when,
        "qosClass": qos_class(spec),
    }
    if state == "evicted":
        result["reason"], result["message"] = "Evicted", eviction_message(spec)
    if inits:
        result["initContainerStatuses"] = [
            _init_status(state, c, i, pod, when) for i, c in enumerate(spec["initContainers"])
        ]
    result["containerStatuses"] = [
        _container_status(state, c, pod, when, bool(inits)) for c in spec.get("containers") or []
    ]
    return result


def initial(pod: Obj, when: str) -> Obj:
    """A new pod's status: scheduled, its containers being created."""
    return status("pending", pod, when)


def _conditions(state: str, spec: Obj, inits: list[str], when: str) -> list[Obj]:
    names = [c.get("name", "") for c in spec.get("containers") or []]
    started = state not in ("pending", "evicted")  # the pod's sandbox is up
    initialized = state not in ("init-crash", "pending") or not inits
    conditions = []
    if state == "evicted":
        message = eviction_message(spec)
        conditions.append(
            _condition("DisruptionTarget", True, when, "TerminationByKubelet", message)
        )
    conditions.append(_condition("PodReadyToStartContainers", started, when))
    if initialized:
        conditions.append(_condition("Initialized", True, when))
    else:
        message = f"containers with incomplete status: [{' '.join(inits)}]"
        conditions.append(
            _condition("Initialized", False, when, "ContainersNotInitialized", message)
        )
    for type_ in ("Ready", "ContainersReady"):
        if state == "ready":
            conditions.append(_condition(type_, True, when))
        elif state == "evicted":
            conditions.append(_condition(type_, False, when, "PodFailed"))
        else:
            message = f"containers with unready status: [{' '.join(names)}]"
            conditions.append(_condition(type_, False, when, "ContainersNotReady", message))
    return conditions


def _condition(type_: str, ok: bool, when: str, reason: str = "", message: str = "") -> Obj:
    cond: Obj = {"type": type_, "status": "True" if ok else "False", "lastProbeTime": None}
    cond["lastTransitionTime"] = when
    if reason:
        cond["reason"] = reason
    if message:
        cond["message"] = message
    return cond


def _init_status(state: str, container: Obj, index: int, pod: Obj, when: str) -> Obj:
    name = container.get("name", "")
    base = _base(container, ready=False)
    if state == "init-crash" and index == 0:
        return {**base, **_crashed(name, pod, when, "Error", 1)}
    if state == "pending" or state == "init-crash":
        return {**base, "state": {"waiting": {"reason": "PodInitializing"}}}
    done = {"exitCode": 0, "reason": "Completed", "startedAt": when, "finishedAt": when}
    return {**base, "state": {"terminated": done}}


def _container_status(state: str, container: Obj, pod: Obj, when: str, inits: bool) -> Obj:
    name, image = container.get("name", ""), container.get("image", "")
    base = _base(container, ready=state == "ready")
    if state == "ready":
        return {**base, "started": True, "state": {"running": {"startedAt": when}}}
    if state in ("oom", "crash"):
        reason, code = ("OOMKilled", 137) if state == "oom" else ("Error", 1)
        return {**base, "started": False, **_crashed(name, pod, when, reason, code)}
    if state == "evicted":
        killed = {"exitCode": 137, "reason": "Error", "startedAt": when, "finishedAt": when}
        return {**base, "state": {"terminated": killed}}
    waiting: Obj = {"reason": "PodInitializing" if inits else "ContainerCreating"}
    if _too_long(container) and state == "pending":  # the kubelet tried and failed at once
        command = (container.get("command") or ["sh"])[0]
        waiting = {"reason": "RunContainerError", "message": EXEC_TOO_LONG.format(command=command)}
    if state == "image-pull":
        waiting = {"reason": "ImagePullBackOff", "message": f'Back-off pulling image "{image}"'}
    elif state == "config-error":
        waiting = {"reason": "CreateContainerConfigError", "message": config_error(pod)}
    elif state == "init-crash":
        waiting = {"reason": "PodInitializing"}
    return {**base, "state": {"waiting": waiting}}


def _too_long(container: Obj) -> bool:
    env = container.get("env") or []
    return any(
        len(f"{e.get('name', '')}={e.get('value', '')}".encode()) + 1 > MAX_ARG_STRLEN for e in env
    )


def _unstartable(spec: Obj) -> bool:
    return any(_too_long(c) for c in spec.get("containers") or [])


def _base(container: Obj, *, ready: bool) -> Obj:
    return {
        "name": container.get("name", ""),
        "image": container.get("image", ""),
        "imageID": "",
        "lastState": {},
        "ready": ready,
        "restartCount": 0,
        "started": False,
    }


def _crashed(name: str, pod: Obj, when: str, reason: str, code: int) -> Obj:
    meta = pod["metadata"]
    who = f"{meta['name']}_{meta.get('namespace', '')}({meta.get('uid', '')})"
    message = f"back-off 40s restarting failed container={name} pod={who}"
    last = {"exitCode": code, "reason": reason, "startedAt": when, "finishedAt": when}
    return {
        "restartCount": 3,
        "lastState": {"terminated": last},
        "state": {"waiting": {"reason": "CrashLoopBackOff", "message": message}},
    }


def config_error(pod: Obj) -> str:
    """The kubelet's words for the first ConfigMap or Secret the containers refer to."""
    spec = pod.get("spec") or {}
    for container in spec.get("containers") or []:
        for source in container.get("envFrom") or []:
            for key, what in (("configMapRef", "configmap"), ("secretRef", "secret")):
                if source.get(key, {}).get("name"):
                    return f'{what} "{source[key]["name"]}" not found'
        for env in container.get("env") or []:
            ref = env.get("valueFrom") or {}
            for key, what in (("configMapKeyRef", "configmap"), ("secretKeyRef", "secret")):
                if ref.get(key, {}).get("name"):
                    return f'{what} "{ref[key]["name"]}" not found'
    volumes = [v["configMap"]["name"] for v in spec.get("volumes") or [] if "configMap" in v]
    return f'configmap "{volumes[0] if volumes else "config"}" not found'


def eviction_message(spec: Obj) -> str:
    """The kubelet's message for a pod evicted under memory pressure (its first container)."""
    message = (
        "The node was low on resource: memory. Threshold quantity: 100Mi, available: 91844Ki. "
    )
    containers = spec.get("containers") or []
    if containers:
        request = ((containers[0].get("resources") or {}).get("requests") or {}).get("memory", "0")
        message += (
            f"Container {containers[0].get('name', '')} was using 1532648Ki, request is {request}, "
            "has larger consumption of memory. "
        )
    return message


def qos_class(spec: Obj) -> str:
    containers = [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]
    resources = [c.get("resources") or {} for c in containers]
    if not any(r.get("requests") or r.get("limits") for r in resources):
        return "BestEffort"
    for r in resources:
        limits, requests = r.get("limits") or {}, r.get("requests") or {}
        for name in ("cpu", "memory"):
            if name not in limits or requests.get(name, limits[name]) != limits[name]:
                return "Burstable"
    return "Guaranteed"
