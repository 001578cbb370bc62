"""What a user hits with a cluster environment: one ``error: ...`` line, exit 1, in seconds."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from cortex.cli import project
from cortex.k8s import custom_resource_definition
from tests.cli.conftest import CLI, api
from tests.fakeapi import FakeCluster, kubeconfig

RAPI = "cortex.dev/v1alpha1/realtimeapis"
CRDS = "apiextensions.k8s.io/v1/customresourcedefinitions"
CONFIGMAPS = "v1/configmaps"
FAST = 10.0  # seconds: an error must come back before a user gives up on it


def fails(cli: CLI, *args: str) -> str:
    """Run, expect exit code 1 in under FAST seconds with one error line; return it."""
    started = time.monotonic()
    result = cli(*args)
    took = time.monotonic() - started
    assert result.returncode == 1, result.stdout + result.stderr
    assert took < FAST, f"cortex {' '.join(args)} took {took:.1f}s"
    [line] = result.stderr.splitlines()
    assert line.startswith("error: ") and "Traceback" not in result.stderr
    return line.removeprefix("error: ")


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[FakeCluster]:
    with FakeCluster(tmp_path) as fake:
        fake.create(CRDS, custom_resource_definition())
        yield fake


def configure(cli: CLI, config: Path) -> CLI:
    cli.env["KUBECONFIG"] = str(config)
    cli.ok("env", "configure", "fake", "--kube-context", "fake")
    return cli


def test_unknown_environment(cli: CLI) -> None:
    assert fails(cli, "get", "-e", "nope") == (
        "environment 'nope' is not configured (configured: local); add it with "
        "`cortex env configure nope --kube-context CONTEXT`"
    )


def test_a_context_that_is_not_in_the_kubeconfig(cli: CLI, cluster: FakeCluster) -> None:
    cli.env["KUBECONFIG"] = str(cluster.kubeconfig)
    assert fails(cli, "env", "configure", "prod", "--kube-context", "prod") == (
        f"context 'prod' is not in the kubeconfig {cluster.kubeconfig} (contexts: fake); "
        "choose one with `cortex env configure NAME --kube-context CONTEXT`"
    )


def test_a_missing_kubeconfig(cli: CLI, tmp_path: Path) -> None:
    cli.env["KUBECONFIG"] = str(tmp_path / "nowhere")
    assert fails(cli, "env", "configure", "prod", "--kube-context", "prod").startswith(
        f"no kubeconfig at {tmp_path / 'nowhere'}"
    )


def test_bad_credentials_are_a_401_line(cli: CLI, tmp_path: Path) -> None:
    with FakeCluster(tmp_path, token="right") as secured:
        config = tmp_path / "wrong-token"
        config.write_text(yaml.safe_dump(kubeconfig(secured.url, token="wrong")))
        configure(cli, config)
        assert fails(cli, "get", "-e", "fake") == (
            f"the API server {secured.url} refused the credentials of context 'fake' "
            "(401 Unauthorized); log in to the cluster again"
        )


def test_a_refused_verb_names_the_resource_and_the_role(cli: CLI, cluster: FakeCluster) -> None:
    configure(cli, cluster.kubeconfig)
    cli.write(api("iris"))
    cluster.deny("create", "configmaps")
    assert fails(cli, "deploy", "-e", "fake") == (
        'not allowed: configmaps is forbidden: User "fake-user" cannot create resource '
        '"configmaps" in API group "" in the namespace "default" (403 Forbidden); ask a '
        "cluster admin to bind you the 'cortex-user' ClusterRole of the cortex Helm chart in "
        "namespace 'default'"
    )


def test_the_operator_not_installed(cli: CLI, tmp_path: Path) -> None:
    with FakeCluster(tmp_path) as bare:  # no CRD
        configure(cli, bare.kubeconfig)
        cli.write(api("iris"))
        message = (
            "the cluster of context 'fake' does not know RealtimeAPI resources "
            "(realtimeapis.cortex.dev); install the operator first: `helm install cortex "
            "deploy/helm/cortex` or `kubectl apply -k operator/`"
        )
        assert fails(cli, "deploy", "-e", "fake") == message
        assert fails(cli, "get", "-e", "fake") == message
        assert [call for call in bare.served() if call[0] != "GET"] == []


def test_a_resource_cortex_did_not_create_is_not_taken_over_without_yes(
    cli: CLI, cluster: FakeCluster
) -> None:
    configure(cli, cluster.kubeconfig)
    handmade = {
        "apiVersion": "cortex.dev/v1alpha1",
        "kind": "RealtimeAPI",
        "metadata": {"name": "iris", "namespace": "default"},
        "spec": {"predictor": {"type": "python", "path": "greeter.py", "image": "me/iris:1"}},
    }
    cluster.create(RAPI, handmade, manager="kubectl-client-side-apply")
    cli.write(api("iris"))
    assert fails(cli, "deploy", "-e", "fake") == (
        "realtimeapi 'iris' in namespace 'default' was not created by `cortex deploy` "
        "(managed by kubectl-client-side-apply); deploy with -y to take it over, or delete it "
        "first (`kubectl delete rapi iris -n default`)"
    )
    assert cluster.get(RAPI, "iris")["spec"]["predictor"]["image"] == "me/iris:1"
    assert "updating iris (RealtimeAPI)" in cli.ok("deploy", "-e", "fake", "-y")
    assert cluster.get(RAPI, "iris")["spec"]["predictor"]["image"] == ""


def test_an_object_cortex_does_not_own_in_the_way(cli: CLI, cluster: FakeCluster) -> None:
    configure(cli, cluster.kubeconfig)
    cli.write(api("iris"))
    taken = f"iris-project-{project.pack(cli.project).sha256[:12]}"
    cluster.create(CONFIGMAPS, {"metadata": {"name": taken}, "data": {"a": "b"}}, "default")
    assert fails(cli, "deploy", "-e", "fake") == (
        f"configmap '{taken}' in namespace 'default' exists and does not belong to cortex; "
        "rename or delete it"
    )
    assert cluster.get(RAPI, "iris") is None


def test_a_spec_the_api_server_rejects(cli: CLI, cluster: FakeCluster) -> None:
    configure(cli, cluster.kubeconfig)
    cli.write(api("iris"))
    path = "/apis/cortex.dev/v1alpha1/namespaces/default/realtimeapis/iris"
    rejection = {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "code": 422,
        "reason": "Invalid",
        "message": 'RealtimeAPI.cortex.dev "iris" is invalid: spec.compute.gpu: Forbidden',
        "details": {
            "causes": [
                {
                    "field": "spec.compute.gpu",
                    "message": "Forbidden: GPUs are reserved for team ml (policy gpu-quota)",
                }
            ]
        },
    }
    cluster.react(lambda fake: fake[f"patch {path}"][:1] << 422 << rejection)
    assert fails(cli, "deploy", "-e", "fake") == (
        "api 'iris': the API server rejected it: spec.compute.gpu: Forbidden: GPUs are "
        "reserved for team ml (policy gpu-quota)"
    )
    assert cluster.select(CONFIGMAPS, labels="cortex.dev/api-name=iris") == []  # cleaned up


def test_a_project_over_the_configmap_limit(cli: CLI, cluster: FakeCluster) -> None:
    configure(cli, cluster.kubeconfig)
    cli.write(api("iris"))
    (cli.project / "weights.bin").write_bytes(os.urandom(1024 * 1024))
    message = fails(cli, "deploy", "-e", "fake")
    assert message.startswith(f"project folder {cli.project} is 1.0 MiB packed, more than the ")
    assert "biggest files: weights.bin (1.0 MiB)" in message
    assert [call for call in cluster.served() if call[0] != "GET"] == []


def test_a_project_the_pods_could_not_take_is_one_line_and_no_upload(
    cli: CLI, cluster: FakeCluster
) -> None:
    configure(cli, cluster.kubeconfig)
    cli.write(api("iris"))
    os.mkfifo(cli.project / "queue")
    assert fails(cli, "deploy", "-e", "fake").startswith(
        "queue in the project folder is a FIFO, so the API's pods would not have it"
    )
    (cli.project / "queue").unlink()
    (cli.project / "etc").symlink_to("/etc")
    assert fails(cli, "deploy", "-e", "fake").startswith(
        "etc in the project folder is a symlink to /etc, outside the folder"
    )
    assert [call for call in cluster.served() if call[0] != "GET"] == []


def test_force_is_refused_on_a_cluster_and_uploads_nothing(cli: CLI, cluster: FakeCluster) -> None:
    configure(cli, cluster.kubeconfig)
    cli.write(api("greeter"))

    assert fails(cli, "deploy", "-e", "fake", "--force") == (
        "--force reloads local APIs only; in environment 'fake' pods roll when the spec or a "
        "project file changes"
    )
    assert cluster.select(CONFIGMAPS) == []
