"""``python -m cortex.operator``: run the operator with settings from ``CORTEX_OPERATOR_*``.

Credentials: the pod's service account in a cluster, else ``$KUBECONFIG`` / ``~/.kube/config``.

Logs go to stderr, one line per message: JSON objects (``message``, ``severity``,
``timestamp``, and ``object`` for messages about a resource) for log collectors, or text for
people. Python warnings become log messages too, so a JSON log stays JSON; the health endpoint's
access log is left out (a line per probe) unless ``--debug``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

import kopf

from cortex import errors
from cortex.k8s import OperatorSettings
from cortex.operator import build_registry, config, kopf_settings, run_options

LOG_FORMATS = {"json": kopf.LogFormat.JSON, "plain": kopf.LogFormat.FULL}

logger = logging.getLogger("cortex.operator")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    kopf.configure(verbose=args.verbose, debug=args.debug, log_format=LOG_FORMATS[args.log_format])
    logging.captureWarnings(True)
    if not args.debug:
        logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    if not (args.verbose or args.debug):
        config.quiet_handler_successes()
    try:
        settings = OperatorSettings.from_env(os.environ)
    except errors.CortexError as exc:
        logger.error("%s", exc)
        return 2
    kopf.run(
        registry=build_registry(settings),
        settings=kopf_settings(settings),
        liveness_endpoint=args.liveness,
        **run_options(settings, priority=args.priority),
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m cortex.operator",
        description="Reconcile RealtimeAPI resources into Deployments, Services, Ingresses, HPAs. "
        "Settings come from CORTEX_OPERATOR_* variables (see cortex/k8s/context.py).",
    )
    parser.add_argument(
        "--liveness",
        metavar="URL",
        default=os.environ.get("CORTEX_OPERATOR_LIVENESS") or None,
        help="serve kopf's health endpoint for liveness and readiness probes, e.g. "
        "http://0.0.0.0:8080/healthz: it answers 200 once the operator has started, "
        "until it stops (default: $CORTEX_OPERATOR_LIVENESS, else none)",
    )
    parser.add_argument(
        "--log-format",
        choices=sorted(LOG_FORMATS),
        default="plain",
        help="json: one JSON object per line (message, severity, timestamp, object); "
        "plain: '[time] logger [level] message' lines (default: plain)",
    )
    parser.add_argument(
        "--priority",
        type=int,
        metavar="N",
        help="with CORTEX_OPERATOR_PEERING: this replica's priority; the highest one is active "
        "and equal ones all wait (default: drawn at random from 1 to 2147483647; a higher one, "
        "e.g. on a laptop while debugging, pauses the cluster's replicas)",
    )
    parser.add_argument("--verbose", action="store_true", help="log what kopf does")
    parser.add_argument("--debug", action="store_true", help="log every API call")
    return parser


if __name__ == "__main__":
    sys.exit(main())
