"""MLServer: a custom runtime doing the trivial work on a V2 (Open Inference Protocol) request.

mlserver start bench/peers/mlserver_trivial    # POST /v2/models/trivial/infer
"""

from mlserver import MLModel
from mlserver.codecs import StringCodec
from mlserver.types import InferenceRequest, InferenceResponse, ResponseOutput

from bench.peers import initwork


class Trivial(MLModel):
    async def load(self) -> bool:
        initwork.init_work()
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        text = StringCodec.decode_input(payload.inputs[0])[0]
        outputs = [
            ResponseOutput(name="label", shape=[1], datatype="BYTES", data=["positive"]),
            ResponseOutput(name="length", shape=[1], datatype="INT64", data=[len(text)]),
        ]
        return InferenceResponse(model_name=self.name, outputs=outputs)
