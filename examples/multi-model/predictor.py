"""Two models behind one endpoint: sentiment analysis and summarization.

The query parameter `model` picks one per request; the payload is the same for both:
  POST ?model=sentiment   {"text": "..."}  -> {"label": "POSITIVE", "score": 0.9998}
  POST ?model=summarizer  {"text": "..."}  -> {"summary": "..."}
The text may also be sent as the body itself with Content-Type: text/plain.
"""

import os

import torch
from starlette.responses import JSONResponse
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer, pipeline

DEFAULT_MODELS = {
    "sentiment": "distilbert-base-uncased-finetuned-sst-2-english",
    "summarizer": "sshleifer/distilbart-cnn-12-6",
}
CHOICES = ", ".join(DEFAULT_MODELS)
CONFIG_KEYS = (*DEFAULT_MODELS, "device", "torch_threads")
USAGE = 'send {"text": "..."} as application/json, or the text itself as text/plain'


def check_config(config):
    unknown = sorted(set(config) - set(CONFIG_KEYS))
    if unknown:
        raise ValueError(
            f"unknown predictor.config keys {unknown}; allowed: {', '.join(CONFIG_KEYS)}"
        )


def read_text(payload):
    """The text to analyse, or the 400 response that explains what to send."""
    if isinstance(payload, dict):
        if "text" not in payload:
            return None, bad_request(f"missing key 'text' (keys sent: {sorted(payload)[:10]})")
        payload = payload["text"]
    elif not isinstance(payload, str):
        return None, bad_request(f"unsupported payload of type {type(payload).__name__}")
    if not isinstance(payload, str):
        return None, bad_request('"text" must be a string')
    if not payload.strip():
        return None, bad_request("the text is empty")
    return payload, None


def bad_request(message):
    return JSONResponse({"error": f"{message}; {USAGE}"}, status_code=400)


class PythonPredictor:
    def __init__(self, config):
        check_config(config)
        torch.set_num_threads(config.get("torch_threads", min(4, len(os.sched_getaffinity(0)))))
        self.device = config.get("device", "cpu")
        models = {name: config.get(name) or model for name, model in DEFAULT_MODELS.items()}

        self.classifier = pipeline(
            "text-classification", model=models["sentiment"], device=self.device
        )

        # transformers 5 has no summarization pipeline: tokenizer + model + generate().
        self.tokenizer = AutoTokenizer.from_pretrained(models["summarizer"])
        self.summarizer = AutoModelForSeq2SeqLM.from_pretrained(models["summarizer"])
        self.summarizer.to(self.device).eval()
        positions = getattr(self.summarizer.config, "max_position_embeddings", None)
        self.max_input_tokens = int(min(self.tokenizer.model_max_length, positions or float("inf")))

    def sentiment(self, text):
        # The classifier truncates texts longer than its model takes.
        result = self.classifier(text, truncation=True)[0]
        return {"label": result["label"], "score": float(result["score"])}

    @torch.inference_mode()
    def summarize(self, text):
        batch = self.tokenizer(
            [text], truncation=True, max_length=self.max_input_tokens, return_tensors="pt"
        ).to(self.device)
        tokens = self.summarizer.generate(**batch)  # the model's own generation settings
        return {"summary": self.tokenizer.decode(tokens[0], skip_special_tokens=True).strip()}

    def predict(self, payload, query_params):
        name = query_params.get("model")
        if name is None:
            return JSONResponse(
                {"error": f"missing query parameter 'model'; choose one of: {CHOICES}"},
                status_code=400,
            )
        if name not in DEFAULT_MODELS:
            return JSONResponse(
                {"error": f"unknown model {name[:64]!r}; choose one of: {CHOICES}"},
                status_code=400,
            )
        text, error = read_text(payload)
        if error is not None:
            return error
        return self.sentiment(text) if name == "sentiment" else self.summarize(text)
