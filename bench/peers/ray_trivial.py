"""Ray Serve: one replica behind Serve's HTTP proxy, local Ray, dashboard off, access log off
(the benchmark sets RAY_USAGE_STATS_ENABLED=0).

python bench/peers/ray_trivial.py PORT     # POST /predict; SIGTERM shuts Serve and Ray down
"""

import signal
import sys
import threading

import ray
from ray import serve
from starlette.requests import Request

from bench.peers import initwork

QUIET = {"enable_access_log": False, "log_level": "WARNING"}


# max_ongoing_requests: with Serve's default (5) the proxy backs off and retries under 64
# connections (11 req/s and wrk timeouts in a trial run); 100, as in the earlier peer runs.
@serve.deployment(num_replicas=1, max_ongoing_requests=100, logging_config=QUIET)
class Trivial:
    def __init__(self) -> None:
        initwork.init_work()

    async def __call__(self, request: Request) -> dict:
        payload = await request.json()
        return {"label": "positive", "length": len(payload.get("text", ""))}


if __name__ == "__main__":
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="warning")
    serve.start(http_options={"host": "127.0.0.1", "port": int(sys.argv[1])}, logging_config=QUIET)
    serve.run(Trivial.bind(), route_prefix="/predict")
    stopped.wait()
    serve.shutdown()
    ray.shutdown()
