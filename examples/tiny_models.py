"""Tiny random Hugging Face models for the examples' tests: built in milliseconds, no network.

Each builder trains a small tokenizer on ``CORPUS``, creates a randomly initialised model with a
fixed seed and saves both with ``save_pretrained`` into a folder that ``from_pretrained`` (and
``pipeline``) load like a Hub model. The weights are random, so outputs have the right shapes and
types but no meaning.
"""

from pathlib import Path

import torch
from tokenizers import (
    Tokenizer,
    decoders,
    models,
    normalizers,
    pre_tokenizers,
    processors,
    trainers,
)
from transformers import (
    BartConfig,
    BartForConditionalGeneration,
    BertConfig,
    BertForSequenceClassification,
    GenerationConfig,
    PreTrainedTokenizerFast,
)
from transformers.utils import logging

logging.disable_progress_bar()  # "Writing model shards" bars only clutter test output

CORPUS = [
    "the quick brown fox jumps over the lazy dog",
    "model serving frameworks wrap a predictor class behind an http api",
    "a kubernetes operator reconciles custom resources into deployments",
    "requests per second and tail latency matter for inference servers",
    "the city council approved the new budget after a long debate on tuesday",
    "scientists found that the river water was cleaner than ten years ago",
] * 10
MAX_POSITIONS = 128


def _template(tokenizer, single, pair, specials):
    return processors.TemplateProcessing(
        single=single,
        pair=pair,
        special_tokens=[(token, tokenizer.token_to_id(token)) for token in specials],
    )


def build_seq2seq(out_dir: Path) -> Path:
    """A BART-shaped summarizer (byte-level BPE, 2+2 layers, d_model 32) saved in ``out_dir``."""
    specials = ["<s>", "<pad>", "</s>", "<unk>"]  # BART's ids: bos 0, pad 1, eos 2, unk 3
    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tk.train_from_iterator(CORPUS, trainer=trainer)
    tk.post_processor = _template(tk, "<s> $A </s>", "<s> $A </s> </s> $B </s>", ["<s>", "</s>"])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tk,
        bos_token="<s>",
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        model_max_length=MAX_POSITIONS,
    )
    config = BartConfig(
        vocab_size=len(tokenizer),
        d_model=32,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        max_position_embeddings=MAX_POSITIONS,
        bos_token_id=0,
        pad_token_id=1,
        eos_token_id=2,
        decoder_start_token_id=2,
    )
    torch.manual_seed(0)
    model = BartForConditionalGeneration(config)
    # Random weights may end a summary at once or emit stray bytes: by default, summaries are a
    # few whole tokens of the corpus long (merged tokens only, no special token but the end).
    suppress = [i for t, i in tokenizer.get_vocab().items() if t in specials or len(t) < 2]
    model.generation_config = GenerationConfig(
        decoder_start_token_id=2,
        bos_token_id=0,
        pad_token_id=1,
        eos_token_id=2,
        min_new_tokens=4,
        max_new_tokens=12,
        suppress_tokens=sorted(set(suppress) - {2}),
    )
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def build_classifier(out_dir: Path) -> Path:
    """A BERT sentiment classifier (WordPiece, labels NEGATIVE/POSITIVE) saved in ``out_dir``."""
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tk = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tk.normalizer = normalizers.BertNormalizer(lowercase=True)
    tk.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tk.decoder = decoders.WordPiece()
    tk.train_from_iterator(
        CORPUS, trainer=trainers.WordPieceTrainer(vocab_size=300, special_tokens=specials)
    )
    tk.post_processor = _template(
        tk, "[CLS] $A [SEP]", "[CLS] $A [SEP] $B [SEP]", ["[CLS]", "[SEP]"]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tk,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=MAX_POSITIONS,
    )
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=MAX_POSITIONS,
        id2label={0: "NEGATIVE", 1: "POSITIVE"},
        label2id={"NEGATIVE": 0, "POSITIVE": 1},
    )
    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir
