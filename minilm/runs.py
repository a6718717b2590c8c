"""Glue for the CLI: build data, tokenizer, model and task from options; load trained checkpoints."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .data import build_tokenizer, load_corpus, tokenizer_from_json
from .errors import MinilmError
from .train import CHECKPOINT, load_checkpoint


def unigram_baseline(train_ids: np.ndarray, val_ids: np.ndarray, vocab_size: int) -> float:
    """Validation loss (nats/token) of the best context-free model: token frequencies of the training
    split (add-one smoothed). A language model must beat this to have learned anything of context."""
    counts = np.bincount(train_ids, minlength=vocab_size).astype(np.float64) + 1.0
    log_p = np.log(counts / counts.sum())
    return float(-log_p[val_ids].mean())


def prepare_text(data: str | None, tokenizer_kind: str, vocab_size: int, tokenizer=None):
    corpus = load_corpus(data)
    train_text, val_text = corpus.split(0.1)
    if tokenizer is None:
        tokenizer = build_tokenizer(tokenizer_kind, corpus.text if tokenizer_kind == "char" else train_text,
                                    vocab_size)
    train_ids, val_ids = tokenizer.encode(train_text), tokenizer.encode(val_text)
    return corpus, tokenizer, train_ids, val_ids


def resolve_checkpoint(path) -> Path:
    p = Path(path)
    if p.is_dir():
        p = p / CHECKPOINT
    if not p.is_file():
        raise MinilmError(f"no checkpoint at {p} (pass a `minilm train` output folder or a .safetensors file)")
    return p


def load_trained(path, backend: str | None = None):
    """(model, tokenizer, metadata) from a training checkpoint; checks the model type and shapes."""
    from .models import build_model
    model_state, _, metadata = load_checkpoint(resolve_checkpoint(path))
    if "model_type" not in metadata or "model_config" not in metadata:
        raise MinilmError(f"{path}: not a minilm model checkpoint (no model_type/model_config in its metadata)")
    config = dict(metadata["model_config"])
    if backend is not None:
        config["backend"] = backend
    model = build_model(metadata["model_type"], config)
    model.load_state_dict(model_state)
    model.eval()
    tokenizer = tokenizer_from_json(metadata["tokenizer"])
    return model, tokenizer, metadata


def perplexity(loss: float) -> float:
    return math.exp(min(loss, 50.0))
