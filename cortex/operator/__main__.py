"""``python -m cortex.operator``: run the operator with settings from ``CORTEX_OPERATOR_*``.

Credentials: the pod's service account in a cluster, else ``$KUBECONFIG`` / ``~/.kube/config``.
"""

from __future__ import annotations

import argparse
import os
import sys

import kopf

from cortex import errors
from cortex.k8s import OperatorSettings
from cortex.operator import build_registry, kopf_settings, run_options


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cortex.operator",
        description="Reconcile RealtimeAPI resources into Deployments, Services, Ingresses, HPAs.",
    )
    parser.add_argument(
        "--liveness",
        metavar="URL",
        default=os.environ.get("CORTEX_OPERATOR_LIVENESS") or None,
        help="serve a liveness probe, e.g. http://0.0.0.0:8080/healthz",
    )
    parser.add_argument("--verbose", action="store_true", help="log what kopf does")
    parser.add_argument("--debug", action="store_true", help="log every API call")
    args = parser.parse_args(argv)
    try:
        settings = OperatorSettings.from_env(os.environ)
    except errors.CortexError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    kopf.configure(verbose=args.verbose, debug=args.debug)
    kopf.run(
        registry=build_registry(settings),
        settings=kopf_settings(settings),
        liveness_endpoint=args.liveness,
        **run_options(settings),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
