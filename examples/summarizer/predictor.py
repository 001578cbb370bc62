"""Abstractive summarization with a sequence-to-sequence model (default: DistilBART CNN 12-6).

Payloads:
  {"text": "..."}            (application/json)  -> {"summary": "..."}
  the text itself            (text/plain)        -> {"summary": "..."}
"""

import os

import torch
from starlette.responses import JSONResponse
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

DEFAULT_MODEL = "sshleifer/distilbart-cnn-12-6"
USAGE = 'send {"text": "..."} as application/json, or the text itself as text/plain'
# Passed on to `generate`. Keys left out keep the model's own generation settings.
GENERATION_KEYS = (
    "max_new_tokens",
    "min_new_tokens",
    "max_length",
    "min_length",
    "num_beams",
    "length_penalty",
    "no_repeat_ngram_size",
    "repetition_penalty",
    "early_stopping",
)
CONFIG_KEYS = ("model", "device", "torch_threads", "max_input_tokens", *GENERATION_KEYS)


def check_config(config):
    unknown = sorted(set(config) - set(CONFIG_KEYS))
    if unknown:
        raise ValueError(
            f"unknown predictor.config keys {unknown}; allowed: {', '.join(CONFIG_KEYS)}"
        )


def input_limit(tokenizer, model):
    """The longest input the model takes: its position table, or the tokenizer's limit."""
    positions = getattr(model.config, "max_position_embeddings", None) or float("inf")
    return int(min(tokenizer.model_max_length, positions))


def read_text(payload):
    """The text to summarise, or the 400 response that explains what to send."""
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
        model = config.get("model") or DEFAULT_MODEL
        self.device = config.get("device", "cpu")
        self.tokenizer = AutoTokenizer.from_pretrained(model)
        self.model = AutoModelForSeq2SeqLM.from_pretrained(model).to(self.device).eval()
        self.max_input_tokens = config.get("max_input_tokens") or input_limit(
            self.tokenizer, self.model
        )
        self.generation = {key: config[key] for key in GENERATION_KEYS if key in config}

    @torch.inference_mode()
    def summarize(self, text):
        batch = self.tokenizer(
            [text], truncation=True, max_length=self.max_input_tokens, return_tensors="pt"
        ).to(self.device)
        tokens = self.model.generate(**batch, **self.generation)
        return self.tokenizer.decode(tokens[0], skip_special_tokens=True).strip()

    def predict(self, payload):
        text, error = read_text(payload)
        if error is not None:
            return error
        return {"summary": self.summarize(text)}
