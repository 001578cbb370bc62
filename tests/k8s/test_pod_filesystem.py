"""The rendered API pod's commands, run here as the kubelet starts them: with the pod's
environment and volumes (each mount path moved under a temporary folder), from the image's working
folder, the read-only project. They write to the pod's emptyDirs only, so the read-only root
filesystem the pod asks for costs them nothing: short of a container runtime, the proof that such
a pod starts and serves. The operator's pod (operator/deployment.yaml) is run the same way.

With ``strace`` installed, every system call that could write (open for writing, mkdir, rename,
unlink, link, chmod, ...) is checked, of every process, whatever library makes it; without it,
what the predictor writes and an unchanged project folder are.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from cortex.cli import project
from cortex.k8s import OperatorSettings, custom_resource_definition, render_deployment
from cortex.k8s.deployment import PROJECT_DIR
from tests import tools
from tests.conftest import FIXTURES
from tests.fakeapi import FakeCluster, wait_for
from tests.k8s.conftest import OPERATOR_DIR, REPO, make_api, owner_of
from tests.runtime.harness import RuntimeProcess
from tests.tinywheel import VALUE, requirements, write_wheel

pytestmark = pytest.mark.slow

STRACE = tools.find("strace")  # the first test uses it where it is, the others require it
# System calls that create, change or remove a file; openat only with a flag that writes.
WRITING = "open,openat,creat,mkdir,mkdirat,rename,renameat,renameat2,link,linkat,symlink,"
WRITING += "symlinkat,unlink,unlinkat,truncate,chmod,fchmodat,chown,lchown,fchownat,utimensat,mknod"
WRITE_FLAGS = ("O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC")
# A path argument, after its directory descriptor where the call takes one (strace -y prints
# the descriptor's path in <>).
PATH_ARG = re.compile(r'(?:(?:AT_FDCWD|\d+)<([^>]*)>, )?"((?:[^"\\]|\\.)*)"')


class LocalPod:
    """One rendered API pod laid out under ``root``: each mount path is a folder there."""

    def __init__(self, root: Path, image: str = "", **sections: Any) -> None:
        predictor = {"path": "scratch_writer.py", "image": image}
        api = make_api("scratch", predictor=predictor, **sections)
        pod = render_deployment(api, owner_of(api), OperatorSettings())["spec"]["template"]
        inits = {init["name"]: init for init in pod["spec"]["initContainers"]}
        self.init, self.deps = inits.get("project", {"volumeMounts": []}), inits["dependencies"]
        [self.api] = pod["spec"]["containers"]
        self.root = root
        containers = (self.init, self.deps, self.api)
        mounts = {m["mountPath"] for c in containers for m in c["volumeMounts"]}
        mounts.add(PROJECT_DIR)  # a folder of the image itself when predictor.image has the code
        self.mounts = sorted(mounts, key=len, reverse=True)  # the longest prefix first
        for mount in mounts:
            self.path(mount).mkdir(parents=True)

    def path(self, pod_path: str) -> Path:
        return self.root / pod_path.lstrip("/")

    def local(self, value: str) -> str:
        """``value`` with a leading mount path moved to its folder here."""
        for mount in self.mounts:
            if value == mount or value.startswith(mount + "/"):
                return str(self.path(mount)) + value[len(mount) :]
        return value

    def env(self, container: dict[str, Any]) -> dict[str, str]:
        """The container's environment as Kubernetes sets it (``$$`` read back as ``$``) over the
        image's and a PATH: nothing of this machine's HOME or TMPDIR."""
        values = {e["name"]: self.local(e["value"].replace("$$", "$")) for e in container["env"]}
        return {"PATH": os.environ["PATH"], **image_env(), **values}

    def command(self, container: dict[str, Any]) -> list[str]:
        python, *args = container["command"]
        assert python == "python"
        return [sys.executable, *(self.local(arg) for arg in args)]

    def writable(self, container: dict[str, Any]) -> list[Path]:
        return [
            self.path(m["mountPath"]) for m in container["volumeMounts"] if not m.get("readOnly")
        ]


def image_env() -> dict[str, str]:
    """The ``ENV`` of the Dockerfile: what every container of the image starts with."""
    text = (REPO / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.split(None, 1)[1] for line in text.splitlines() if line.startswith("ENV ")]
    return dict(item.split("=", 1) for line in lines for item in line.split())


def traced(command: list[str], log: Path) -> list[str]:
    if STRACE is None:
        return command
    return [STRACE, "-f", "-qq", "--seccomp-bpf", "-y", "-e", "signal=none", "-e",
            f"trace={WRITING}", "-o", str(log), *command]  # fmt: skip


def writes_outside(log: Path, cwd: Path, allowed: list[Path]) -> list[str]:
    """The calls in the strace ``log`` that wrote, or tried to, outside ``allowed`` and /dev
    (a container's /dev and /dev/shm are its own tmpfs, writable with a read-only root: the
    replica's semaphores and shared memory live there)."""
    found = []
    for line in log.read_text().splitlines():
        call = line.split(maxsplit=1)[-1]  # strace pads the pids to one width
        if call.startswith(("open(", "openat(")) and not any(f in call for f in WRITE_FLAGS):
            continue
        for folder, name in PATH_ARG.findall(call):
            path = Path(folder or cwd, name) if not name.startswith("/") else Path(name)
            where = Path(os.path.normpath(path))
            if not any(where.is_relative_to(ok) for ok in [*allowed, Path("/dev")]):
                found.append(call)
    return found


def tree(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


def unpack_project(pod: LocalPod, log: Path) -> None:
    """The init container: the CLI's archive of the project, unpacked by the pod's command."""
    source = pod.root.parent / "source"
    source.mkdir()
    shutil.copy(FIXTURES / "scratch_writer.py", source)
    archive = pod.path("/mnt/project-archive") / "project.tar.gz"
    archive.write_bytes(project.pack(source).data)
    subprocess.run(
        traced(pod.command(pod.init), log),
        env=pod.env(pod.init),
        cwd=pod.path("/mnt/project"),  # the image's WORKDIR
        check=True,
        capture_output=True,
        timeout=120,
    )
    for path in (pod.path("/mnt/project"), *pod.path("/mnt/project").rglob("*")):
        path.chmod(path.stat().st_mode & ~0o222)  # what the runtime sees: a read-only mount


def serve(pod: LocalPod, log: Path) -> dict[str, Any]:
    """The api container until it answered one prediction; that answer."""
    command = pod.command(pod.api)
    port_at = command.index("--port")
    del command[port_at : port_at + 2]  # the harness picks a free port
    harness = pod.path("/tmp") / "harness"  # its log and status files, in the pod's /tmp
    harness.mkdir()
    with RuntimeProcess(
        harness / "cortex.yaml",
        command=traced(command, log),
        env=pod.env(pod.api),
        cwd=pod.path("/mnt/project"),
    ) as runtime:
        answer = runtime.post("/scratch", json={})
        assert answer.status_code == 200, answer.text
        if STRACE is not None:  # strace outlives a signal to itself: stop the runtime it runs
            os.kill(runtime.status()["pid"], signal.SIGTERM)
            runtime.exit_code(60)
    where: dict[str, Any] = answer.json()
    return where


def test_the_pod_serves_from_a_read_only_project_writing_its_caches_to_emptydirs(
    tmp_path: Path,
) -> None:
    pod = LocalPod(tmp_path / "pod", project={"configMap": "scratch-project"})
    unpack_project(pod, tmp_path / "unpack.strace")
    fixed = {p: tree(p) for p in (pod.path("/mnt/project"), pod.path("/mnt/project-archive"))}

    where = serve(pod, tmp_path / "serve.strace")

    assert Path(where["cache"]).is_relative_to(pod.path("/mnt/home"))
    assert (Path(where["cache"]) / "weights.bin").stat().st_size == 1024
    assert where["tmp"] == str(pod.path("/tmp"))
    assert {p: tree(p) for p in fixed} == fixed  # no __pycache__ beside the predictor
    assert tree(pod.path("/mnt/project")) == ["scratch_writer.py"]


def test_every_write_of_either_container_goes_to_its_writable_volumes(tmp_path: Path) -> None:
    tools.require("strace")
    pod = LocalPod(tmp_path / "pod", project={"configMap": "scratch-project"})

    unpack_project(pod, tmp_path / "unpack.strace")
    serve(pod, tmp_path / "serve.strace")

    cwd = pod.path("/mnt/project")
    init = writes_outside(tmp_path / "unpack.strace", cwd, pod.writable(pod.init))
    api = writes_outside(tmp_path / "serve.strace", cwd, pod.writable(pod.api))
    assert (init, api) == ([], [])
    # The trace saw the writes it allowed: of the init container, of a forked worker.
    assert '"scratch_writer.py", O_WRONLY' in (tmp_path / "unpack.strace").read_text()
    serving = (tmp_path / "serve.strace").read_text()
    assert f'"{pod.path("/mnt/home")}/.cache/models/weights.bin", O_WRONLY' in serving


def test_the_dependencies_step_installs_the_requirements_where_the_api_container_imports_them(
    tmp_path: Path,
) -> None:
    pod = LocalPod(tmp_path / "pod", image="example.com/team/api:1")
    project_dir = pod.path("/mnt/project")  # baked into the image: read-only in the pod
    (project_dir / "requirements.txt").write_text(requirements(write_wheel(tmp_path / "w").parent))
    (project_dir / "dependencies.sh").write_text('echo "dependencies.sh in $PWD"\n')
    project_dir.chmod(0o555)
    log = tmp_path / "deps.strace"

    installed = subprocess.run(
        traced(pod.command(pod.deps), log),
        env=pod.env(pod.deps),
        cwd=project_dir,
        capture_output=True,
        text=True,
        timeout=120,
    )
    imported = subprocess.run(
        [sys.executable, "-c", "import tinydep; print(tinydep.__file__, tinydep.VALUE)"],
        env=pod.env(pod.api),
        cwd=project_dir,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert "Successfully installed tinydep-1.0" in installed.stdout  # pip's output: the pod log
    assert f"dependencies.sh in {project_dir}" in installed.stdout
    assert imported.stdout.split(" ", 1) == [
        str(pod.path("/mnt/deps") / "tinydep" / "__init__.py"),
        f"{VALUE}\n",
    ]
    assert tree(project_dir) == ["dependencies.sh", "requirements.txt"]
    if STRACE is not None:
        assert writes_outside(log, project_dir, pod.writable(pod.deps)) == []


def test_a_failing_install_step_says_so_in_one_error_line(tmp_path: Path) -> None:
    pod = LocalPod(tmp_path / "pod")
    (pod.path("/mnt/project") / "requirements.txt").write_text(requirements(tmp_path, "nope==1"))

    installed = subprocess.run(
        pod.command(pod.deps),
        env=pod.env(pod.deps),
        cwd=pod.path("/mnt/project"),
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert installed.returncode == 1
    assert "No matching distribution found for nope==1" in installed.stderr
    assert installed.stderr.splitlines()[-1] == (
        "error: pip could not install requirements.txt (its reason is above)"
    )


def test_the_operator_pod_writes_only_to_its_tmp(tmp_path: Path) -> None:
    tools.require("strace")
    [deployment] = yaml.safe_load_all((OPERATOR_DIR / "deployment.yaml").read_text())
    pod = deployment["spec"]["template"]["spec"]
    [operator] = pod["containers"]
    assert [m["mountPath"] for m in operator["volumeMounts"]] == ["/tmp"]
    # The emptyDir, the image's home and working folder (both read-only in the pod).
    scratch, home, workdir = tmp_path / "tmp", tmp_path / "home", tmp_path / "workdir"
    for folder in (scratch, home, workdir):
        folder.mkdir()
    # The manifest's settings, but for what needs components the fake does not serve; no port
    # of this shared machine fixed. TMPDIR stands for the /tmp mount, HOME for the image's own.
    env = image_env() | {e["name"]: e["value"] for e in operator["env"]}
    env |= {"CORTEX_OPERATOR_ROUTING": "none", "CORTEX_OPERATOR_AUTOSCALER": "cpu"}
    args = [arg.replace(":8080/", ":0/").replace(":8081/", ":0/") for arg in operator["args"]]
    command = [sys.executable, *operator["command"][1:], *args]
    log = tmp_path / "operator.strace"
    with FakeCluster(tmp_path) as cluster:
        cluster.create(
            "apiextensions.k8s.io/v1/customresourcedefinitions", custom_resource_definition()
        )
        env |= {"PATH": os.environ["PATH"], "KUBECONFIG": str(cluster.kubeconfig)}
        env |= {"TMPDIR": str(scratch), "HOME": str(home)}
        with (tmp_path / "operator.log").open("w") as out:
            tracer = subprocess.Popen(
                traced(command, log), env=env, cwd=workdir, stdout=out, stderr=out
            )
        try:
            cluster.create(
                "cortex.dev/v1alpha1/realtimeapis", _resource("iris"), namespace="default"
            )
            wait_for(
                lambda: cluster.get("apps/v1/deployments", "api-iris", "default"),
                timeout=60,
                what="the operator's Deployment",
            )
        finally:
            children = Path(f"/proc/{tracer.pid}/task/{tracer.pid}/children").read_text().split()
            for child in children:  # strace outlives a signal to itself: stop what it runs
                os.kill(int(child), signal.SIGTERM)
            tracer.wait(60)

    assert writes_outside(log, workdir, [scratch]) == []


def _resource(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "cortex.dev/v1alpha1",
        "kind": "RealtimeAPI",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"predictor": {"type": "python", "path": "predictor.py"}},
    }
