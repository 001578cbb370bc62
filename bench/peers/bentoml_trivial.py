"""BentoML: one service, one worker; access log off in its service config.

python -m bentoml serve bench.peers.bentoml_trivial:Trivial --host 127.0.0.1 --port PORT
"""

import bentoml

from bench.peers import initwork


@bentoml.service(workers=1, logging={"access": {"enabled": False}})
class Trivial:
    def __init__(self) -> None:
        initwork.init_work()

    @bentoml.api
    async def predict(self, text: str) -> dict:
        return {"label": "positive", "length": len(text)}
