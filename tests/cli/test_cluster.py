"""``cortex ... -e CLUSTER`` end to end: the real CLI, the real ``python -m cortex.operator`` and
the fake API server over HTTP, with a kubeconfig pointing at it (docs/cluster.md walks through
the same steps)."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from cortex.k8s import custom_resource_definition
from tests.cli.conftest import CLI, api, table_rows
from tests.cli.test_predict import read_gated_stream
from tests.fakeapi import FakeCluster, wait_for
from tests.runtime.harness import RuntimeProcess

ROOT = Path(__file__).resolve().parents[2]
RAPI = "cortex.dev/v1alpha1/realtimeapis"
CRDS = "apiextensions.k8s.io/v1/customresourcedefinitions"
DEPLOYMENTS = "apps/v1/deployments"
CONFIGMAPS = "v1/configmaps"
pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[FakeCluster]:
    with FakeCluster(tmp_path) as fake:
        fake.create(CRDS, custom_resource_definition())
        yield fake


@pytest.fixture
def operator(cluster: FakeCluster, tmp_path: Path) -> Iterator[None]:
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig), "CORTEX_OPERATOR_NAMESPACE": ""}
    with (tmp_path / "operator.log").open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "cortex.operator"], env=env, stdout=log, stderr=log
        )
    try:
        yield
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)


@pytest.fixture
def kcli(cli: CLI, cluster: FakeCluster) -> CLI:
    """The CLI with a cluster environment `fake` (its context found through KUBECONFIG)."""
    cli.env["KUBECONFIG"] = str(cluster.kubeconfig)
    cli.ok("env", "configure", "fake", "--kube-context", "fake")
    return cli


def archive_names(config_map: dict) -> list[str]:
    data = base64.b64decode(config_map["binaryData"]["project.tar.gz"])
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return tar.getnames()


def project_maps(cluster: FakeCluster, name: str) -> list[dict]:
    return cluster.select(CONFIGMAPS, labels=f"cortex.dev/api-name={name}")


def writes(cluster: FakeCluster) -> list[tuple[str, str, int]]:
    return [call for call in cluster.served() if call[0] in ("POST", "PUT", "PATCH", "DELETE")]


def test_deploy_get_predict_update_and_delete_on_a_cluster(
    kcli: CLI, cluster: FakeCluster, operator: None, tmp_path: Path
) -> None:
    kcli.write(api("greeter", version=1), api("echoer", version=1))
    (kcli.project / ".env").write_text("SECRET=1")  # dotfiles never leave the machine

    out = kcli.ok("deploy", "-e", "fake")
    assert "creating greeter (RealtimeAPI)" in out
    assert "creating echoer (RealtimeAPI)" in out

    # The project went up once per API as an immutable ConfigMap owned by its resource.
    for name in ("greeter", "echoer"):
        resource = cluster.get(RAPI, name)
        assert resource is not None
        [config_map] = project_maps(cluster, name)
        assert config_map["immutable"] is True
        assert archive_names(config_map) == ["cortex.yaml", "greeter.py"]
        assert resource["spec"]["project"]["configMap"] == config_map["metadata"]["name"]
        assert config_map["metadata"]["ownerReferences"][0]["uid"] == resource["metadata"]["uid"]

    # The operator renders the children; the fake's pods turn ready; get shows live.
    wait_for(lambda: cluster.get(DEPLOYMENTS, "api-greeter"), what="the operator's Deployment")
    wait_for(lambda: cluster.get(DEPLOYMENTS, "api-echoer"), what="the operator's Deployment")
    cluster.set_pods("api-greeter", "ready")
    cluster.set_pods("api-echoer", "ready")

    def rows() -> dict[str, dict[str, str]]:
        return table_rows(kcli.ok("get", "-e", "fake"))

    wait_for(
        lambda: all(r["status"] == "live" for r in rows().values()) and len(rows()) == 2,
        timeout=60,
        what="cortex get -e fake to show both live",
    )
    details = kcli.ok("get", "greeter", "-e", "fake")
    assert "replicas:" in details and ": ready" in details
    assert "conditions:" in details and "Ready=True" in details

    # predict goes through the API server's service proxy to a replica (a runtime run here).
    replica = tmp_path / "replica"  # its own folder: the runtime's files are not the project's
    replica.mkdir()
    for name in ("cortex.yaml", "greeter.py"):
        (replica / name).write_text((kcli.project / name).read_text())
    with RuntimeProcess(replica / "cortex.yaml", "--api", "greeter") as runtime:
        cluster.route_service("default", "api-greeter", 8888, runtime.base)
        answer = json.loads(kcli.ok("predict", "greeter", "-e", "fake", "-d", '{"name": "ada"}'))
        # get sums the request figures of the pods' /metrics, read through the pod proxy.
        [pod] = [p["metadata"]["name"] for p in cluster.select("v1/pods")
                 if p["metadata"]["name"].startswith("api-greeter-")]  # fmt: skip
        cluster.route_pod("default", pod, 8888, runtime.base)
        assert rows()["greeter"]["2XX"] == "1"
    assert answer == {"greeting": "hello ada", "version": 1}

    # Unchanged: nothing is written.
    before = len(writes(cluster))
    out = kcli.ok("deploy", "-e", "fake")
    assert "greeter is up to date" in out and "echoer is up to date" in out
    assert writes(cluster)[before:] == []

    # Changed code: a new ConfigMap, a new pod template; the other API's too (same folder).
    old_template = cluster.get(DEPLOYMENTS, "api-greeter")["spec"]["template"]
    with (kcli.project / "greeter.py").open("a") as handle:
        handle.write("\n# a change\n")
    assert "updating greeter (RealtimeAPI)" in kcli.ok("deploy", "-e", "fake")
    new_map = cluster.get(RAPI, "greeter")["spec"]["project"]["configMap"]
    assert new_map != old_template["spec"]["volumes"][0]["configMap"]["name"]
    wait_for(
        lambda: cluster.get(DEPLOYMENTS, "api-greeter")["spec"]["template"] != old_template,
        what="the pod template to change",
    )

    # Once the new version is rolled out, `deploy --wait` leaves only the code in use (the old
    # ConfigMap may be gone already, when the pods were replaced before the deploy ended).
    wait_for(
        lambda: cluster.get(DEPLOYMENTS, "api-echoer")["metadata"]["generation"] > 1,
        what="the other API's new pod template",
    )
    cluster.set_pods("api-greeter", "ready")
    cluster.set_pods("api-echoer", "ready")
    assert "greeter is live" in kcli.ok("deploy", "-e", "fake", "--wait", timeout=60)
    assert [m["metadata"]["name"] for m in project_maps(cluster, "greeter")] == [new_map]

    assert kcli.ok("delete", "greeter", "-e", "fake", "-y").strip() == "deleting greeter"
    assert cluster.get(RAPI, "greeter") is None
    assert cluster.get(DEPLOYMENTS, "api-greeter") is None
    assert project_maps(cluster, "greeter") == []
    assert list(table_rows(kcli.ok("get", "-e", "fake"))) == ["echoer"]


def deploy_waiting(kcli: CLI, cluster: FakeCluster, name: str, pods: str) -> tuple[int, str, str]:
    """``cortex deploy -e fake --wait`` while the API's pods turn to ``pods``: (code, out, err)."""
    waiting = subprocess.Popen(
        [sys.executable, "-m", "cortex.cli.main", "deploy", "-e", "fake", "--wait"],
        cwd=kcli.project,
        env=kcli.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: cluster.get(DEPLOYMENTS, f"api-{name}"), what="the Deployment")
        cluster.set_pods(f"api-{name}", pods)
        out, err = waiting.communicate(timeout=60)
    finally:
        if waiting.poll() is None:
            waiting.kill()
            waiting.communicate()
    return waiting.returncode, out, err


def test_deploy_wait_follows_the_rollout_and_fails_with_the_reason(
    kcli: CLI, cluster: FakeCluster, operator: None
) -> None:
    kcli.write(api("pulled"))
    code, out, err = deploy_waiting(kcli, cluster, "pulled", "image-pull")
    assert code == 1
    assert "creating pulled (RealtimeAPI)" in out
    assert err.startswith("error: api 'pulled' failed to start: error (image pull): pod api-pulled")


def test_deploy_wait_ends_live_and_logs_show_each_pod(
    kcli: CLI, cluster: FakeCluster, operator: None
) -> None:
    kcli.write(api("steady"))
    code, out, err = deploy_waiting(kcli, cluster, "steady", "ready")
    assert code == 0, err
    [pod] = [p["metadata"]["name"] for p in cluster.select("v1/pods")]
    assert "steady is live at /steady" in out

    cluster.append_log("default", pod, '{"level": "info", "message": "predictor loaded"}')
    short = pod.removeprefix("api-steady-")
    shown = kcli.ok("logs", "steady", "-e", "fake", "--raw")
    assert shown == f'{short} {{"level": "info", "message": "predictor loaded"}}\n'
    assert kcli.ok("logs", "steady", "-e", "fake", "--raw", "--pod", short) == shown
    result = kcli("logs", "steady", "-e", "fake", "--pod", "nope")
    assert result.stderr == f"error: api 'steady' has no pod 'nope' (pods: {pod})\n"


def rbac_attributes(method: str, path: str) -> tuple[str, str, str] | None:
    """(verb, API group, resource[/subresource]) of a request, as the API server authorizes it;
    None for discovery (granted to every user by system:discovery)."""
    parts = path.strip("/").split("/")
    group, rest = ("", parts[2:]) if parts[0] == "api" else (parts[1], parts[3:])
    if len(rest) < 3 or rest[0] != "namespaces":
        return None
    resource, name_and_sub = rest[2], rest[3:]
    if len(name_and_sub) > 1:
        resource += "/" + name_and_sub[1]
    verbs = {"POST": "create", "PATCH": "patch", "PUT": "update", "DELETE": "delete"}
    verb = verbs.get(method) or ("get" if name_and_sub else "list")
    if resource.endswith("/proxy"):
        verb = "create" if method == "POST" else "get"
    return verb, group, resource


def test_the_cortex_user_role_grants_every_request_the_cli_makes(
    kcli: CLI, cluster: FakeCluster
) -> None:
    kcli.write(api("iris"))
    kcli.ok("deploy", "-e", "fake")
    kcli.ok("get", "-e", "fake")
    kcli.ok("get", "iris", "-e", "fake")
    kcli.ok("logs", "iris", "-e", "fake")
    kcli("predict", "iris", "-e", "fake", "-d", "{}")  # no replica: refused, but asked
    with (kcli.project / "greeter.py").open("a") as handle:
        handle.write("# v2\n")
    kcli.ok("deploy", "-e", "fake")  # an update, and the old ConfigMap collected
    kcli.ok("delete", "iris", "-e", "fake", "-y", "--no-wait")
    role = yaml.safe_load((ROOT / "operator" / "user-role.yaml").read_text())
    granted = {
        (verb, group, resource)
        for rule in role["rules"]
        for verb in rule["verbs"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    asked = {rbac_attributes(method, path) for method, path, _ in cluster.served()} - {None}
    assert asked - granted == set()
    assert ("create", "", "services/proxy") in asked and ("delete", "", "configmaps") in asked


def test_logs_follow_new_lines_until_the_api_is_deleted(
    kcli: CLI, cluster: FakeCluster, operator: None
) -> None:
    kcli.write(api("chatty"))
    kcli.ok("deploy", "-e", "fake")
    wait_for(lambda: cluster.get(DEPLOYMENTS, "api-chatty"), what="the Deployment")
    [pod] = cluster.set_pods("api-chatty", "ready")
    follower = subprocess.Popen(
        [sys.executable, "-m", "cortex.cli.main", "logs", "chatty", "-e", "fake", "-f", "--raw"],
        cwd=kcli.project,
        env=kcli.env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert follower.stdout is not None
        cluster.append_log("default", pod, "first")
        assert follower.stdout.readline() == f"{pod.removeprefix('api-chatty-')} first\n"
        cluster.append_log("default", pod, "second")
        assert follower.stdout.readline().endswith(" second\n")
        kcli.ok("delete", "chatty", "-e", "fake", "-y")
        assert follower.wait(30) == 0
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
        if follower.stdout is not None:
            follower.stdout.close()


def test_predict_uses_the_address_in_the_status_when_it_answers(
    kcli: CLI, cluster: FakeCluster, tmp_path: Path
) -> None:
    kcli.write(api("direct"))
    kcli.ok("deploy", "-e", "fake")
    replica = tmp_path / "replica"
    replica.mkdir()
    for name in ("cortex.yaml", "greeter.py"):
        (replica / name).write_text((kcli.project / name).read_text())
    with RuntimeProcess(replica / "cortex.yaml") as runtime:
        # A route with an address (a Gateway's): reached directly; no Service proxy route here.
        status = {"status": {"endpoint": f"{runtime.base}/direct"}}
        cluster.patch(RAPI, "direct", status, subresource="status")
        answer = json.loads(kcli.ok("predict", "direct", "-e", "fake", "-d", '{"name": "bo"}'))
        assert answer["greeting"] == "hello bo"
        # An address this machine cannot reach: the proxy then (no operator here: no Service).
        cluster.patch(
            RAPI,
            "direct",
            {"status": {"endpoint": "http://127.0.0.1:1/direct"}},
            subresource="status",
        )
        result = kcli("predict", "direct", "-e", "fake", "-d", "{}")
    assert result.stderr.startswith(
        "error: api 'direct' cannot be reached through the API server: "
        'services "api-direct" not found'
    )


@contextlib.contextmanager
def replica_behind_the_service(
    kcli: CLI, cluster: FakeCluster, tmp_path: Path, name: str, predictor: str
) -> Iterator[None]:
    """A real runtime of the deployed API ``name`` behind its Service (there is no operator
    here to create it), reached through the API server's Service proxy."""
    service = {"metadata": {"name": f"api-{name}"}, "spec": {"ports": [{"port": 8888}]}}
    cluster.create("v1/services", {"apiVersion": "v1", "kind": "Service", **service}, "default")
    replica = tmp_path / "replica"
    replica.mkdir()
    for file in ("cortex.yaml", predictor):
        (replica / file).write_text((kcli.project / file).read_text())
    with RuntimeProcess(replica / "cortex.yaml") as runtime:
        cluster.route_service("default", f"api-{name}", 8888, runtime.base)
        yield


def test_predict_sends_query_parameters_and_headers_through_the_service_proxy(
    kcli: CLI, cluster: FakeCluster, tmp_path: Path
) -> None:
    kcli.write(api("echo", "echo_request.py"))
    kcli.ok("deploy", "-e", "fake")
    with replica_behind_the_service(kcli, cluster, tmp_path, "echo", "echo_request.py"):
        shown = kcli.ok(
            "predict", "echo", "-e", "fake", "-d", "{}", "-q", "model=a", "-H", "X-Trace: t"
        )
    assert json.loads(shown)["query"] == [["model", "a"]]
    assert json.loads(shown)["headers"] == {"x-trace": "t"}


def test_predict_prints_a_stream_through_the_service_proxy_as_it_arrives(
    kcli: CLI, cluster: FakeCluster, tmp_path: Path
) -> None:
    gates = tmp_path / "gates"
    gates.mkdir()
    kcli.write(api("tokens", "gated_stream.py", gates=str(gates)))
    kcli.ok("deploy", "-e", "fake")
    with replica_behind_the_service(kcli, cluster, tmp_path, "tokens", "gated_stream.py"):
        still_open, shown, code, stderr = read_gated_stream(kcli, gates, "-e", "fake")

    assert still_open  # printed before the stream ended: the proxy's answer was not buffered
    assert shown == ['{"i":0}', '{"i":1}']
    assert code == 0, stderr


def test_get_shows_a_curl_example_made_from_the_deployed_projects_sample_json(
    kcli: CLI, cluster: FakeCluster
) -> None:
    kcli.write(api("labels", "labeller.py"))
    (kcli.project / "sample.json").write_text('{\n  "text": "a good day"\n}\n')
    kcli.ok("deploy", "-e", "fake")
    (kcli.project / "sample.json").unlink()  # read from the cluster, not from this folder
    endpoint = {"status": {"endpoint": "http://ml.example.com/labels", "status": "live"}}
    cluster.patch(RAPI, "labels", endpoint, subresource="status")

    shown = kcli.ok("get", "labels", "-e", "fake")

    example = shown.splitlines()[shown.splitlines().index("example curl:") + 1]
    assert example.strip() == (
        'curl http://ml.example.com/labels -X POST -H "Content-Type: application/json" '
        """-d '{"text": "a good day"}'"""
    )


def test_get_name_lists_a_multi_model_apis_models_from_a_ready_pod(
    kcli: CLI, cluster: FakeCluster, operator: None, tmp_path: Path
) -> None:
    predictor = Path(__file__).parent.parent / "fixtures" / "many_models.py"
    (kcli.project / "many_models.py").write_text(predictor.read_text())
    for version in ("1", "2"):
        folder = kcli.project / "models" / "iris" / version
        folder.mkdir(parents=True)
        (folder / "weights.txt").write_text(f"iris-{version}")
    spec = api("zoo", "many_models.py")
    spec["predictor"]["models"] = {"dir": "models", "poll_interval": 0}
    (kcli.project / "cortex.yaml").write_text(yaml.safe_dump([spec]))
    kcli.ok("deploy", "-e", "fake")
    wait_for(lambda: cluster.get(DEPLOYMENTS, "api-zoo"), what="the operator's Deployment")
    cluster.set_pods("api-zoo", "ready")
    replica = tmp_path / "replica"
    shutil.copytree(kcli.project, replica)
    with RuntimeProcess(replica / "cortex.yaml") as runtime:
        runtime.post(params={"model": "iris", "version": "1"}, json={})
        wait_for(
            lambda: [
                p for p in cluster.select("v1/pods") if p["metadata"]["name"].startswith("api-zoo-")
            ],
            what="the Deployment's pod",
        )
        [pod] = [p["metadata"]["name"] for p in cluster.select("v1/pods")
                 if p["metadata"]["name"].startswith("api-zoo-")]  # fmt: skip
        cluster.route_pod("default", pod, 8888, runtime.base)
        shown = kcli.ok("get", "zoo", "-e", "fake")
    block = shown[shown.index("models:") :].splitlines()
    assert block[1].split() == ["model", "versions", "latest", "loaded"]
    assert block[2].split() == ["iris", "1,", "2", "2", "1"]
