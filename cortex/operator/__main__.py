"""``python -m cortex.operator``: run the operator with settings from ``CORTEX_OPERATOR_*``.

Credentials: the pod's service account in a cluster, else ``$KUBECONFIG`` / ``~/.kube/config``.

Logs go to stderr, one line per message: JSON objects (``message``, ``severity``,
``timestamp``, and ``object`` for messages about a resource) for log collectors, or text for
people. Python warnings become log messages too, so a JSON log stays JSON; the health endpoint's
access log is left out (a line per probe) unless ``--debug``. With ``--metrics URL`` the
operator's own metrics (:mod:`cortex.operator.metrics`) are served there for Prometheus.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys

import kopf

from cortex import errors
from cortex.k8s import OperatorSettings
from cortex.operator import build_registry, config, kopf_settings, metrics, run_options
from cortex.operator.state import State

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
    with contextlib.suppress(asyncio.CancelledError):  # kopf.run's way out on a signal, too
        asyncio.run(_operate(settings, args))
    return 0


async def _operate(settings: OperatorSettings, args: argparse.Namespace) -> None:
    """kopf's operator (as ``kopf.run`` runs it), with the metrics endpoint meanwhile."""
    state = State(settings)
    async with metrics.serving(args.metrics, state.metrics.registry):
        await kopf.operator(
            registry=build_registry(settings, state=state),
            settings=kopf_settings(settings),
            liveness_endpoint=args.liveness,
            **run_options(settings, priority=args.priority),
        )


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
        "--metrics",
        metavar="URL",
        type=_metrics_url,
        default=os.environ.get("CORTEX_OPERATOR_METRICS") or None,
        help="serve the operator's Prometheus metrics (passes, applies, errors, APIs, work "
        "queue) there, e.g. http://0.0.0.0:8081/metrics (default: $CORTEX_OPERATOR_METRICS, "
        "else none)",
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


def _metrics_url(url: str) -> str:
    try:
        metrics.parse_endpoint(url)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return url


if __name__ == "__main__":
    sys.exit(main())
