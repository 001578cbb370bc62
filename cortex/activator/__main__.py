"""``python -m cortex.activator``: hold the requests of APIs at zero and wake them.

Runs from the same image as the runtime and the operator. Credentials: the pod's service
account in a cluster, else ``$KUBECONFIG`` / ``~/.kube/config``. It stops on SIGTERM or SIGINT;
the chart gives its pods a ``preStop`` pause so the route stops sending to one first.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Callable

from cortex import contracts, errors
from cortex.activator.app import Settings, create_app, serve
from cortex.activator.kube import Kube

logger = logging.getLogger("cortex.activator")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m cortex.activator", description=__doc__)
    parser.add_argument(contracts.Flag.HOST, default="0.0.0.0", help="address to listen on")
    parser.add_argument(
        contracts.Flag.PORT, type=int, default=contracts.DEFAULT_PORT, help="port (8888)"
    )
    parser.add_argument("--namespace", default=None, help="the one namespace to serve (all)")
    parser.add_argument("--kubeconfig", default=None, help="kubeconfig file (in-cluster)")
    parser.add_argument(
        "--heartbeat", type=float, default=15.0, help="seconds between SSE comments while held"
    )
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning"))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    settings = Settings(
        host=args.host, port=args.port, namespace=args.namespace, heartbeat=args.heartbeat
    )
    try:
        kube = Kube.from_environment(args.kubeconfig)
    except errors.CortexError as exc:
        logger.error("%s", exc)
        return 2
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(_run(kube, settings))
    return 0


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop where it is installed (the image has it, as the runtime's uvicorn does):
    it halves the activator's cost per request. Else asyncio's own."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


async def _run(kube: Kube, settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await serve(create_app(kube, settings), settings, stop)


if __name__ == "__main__":
    sys.exit(main())
