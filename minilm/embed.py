"""Sentence embeddings from a pre-trained BERT, as sentence-transformers computes them.

    vectors = minilm.embed(["The quick brown fox ...", "A man is playing a guitar."])   # (2, 384)
    vectors @ vectors.T                                                                  # cosines

    ids, attention_mask (B, T)      WordPiece, [CLS] ... [SEP], right-padded; mask 1 = real token
    h = BERT.encode(ids, key_padding_mask = attention_mask == 0)          (B, T, C)
    e = sum_t mask[b, t] h[b, t] / sum_t mask[b, t]                        (B, C)   mean pooling
    e = e / max(||e||, 1e-12)                                              (B, C)   L2 normalisation

The pooling mode, the normalisation and max_length come from the sentence-transformers files of the
model directory (1_Pooling/config.json, modules.json, sentence_bert_config.json). Loaded models are
cached per (model, backend). This module imports only numpy at load; the model loads at first use.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DEFAULT_MODEL = "all-MiniLM-L6-v2"
_CACHE: dict = {}


def mean_pool(hidden: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
    """hidden (B, T, C), attention_mask (B, T) with 1 = real token -> (B, C) mean over real tokens."""
    keep = attention_mask.astype(hidden.dtype)[:, :, None]                             # (B, T, 1)
    return (hidden * keep).sum(axis=1) / np.maximum(keep.sum(axis=1), 1e-9)


def l2_normalize(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """x (N, C) -> x / max(||x||, eps) row by row (torch.nn.functional.normalize)."""
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), eps)


@dataclass
class SentenceEncoder:
    """A BERT, its tokenizer and the sentence-transformers recipe (pooling, normalisation, max_length)."""
    model: object
    tokenizer: object
    pooling: str = "mean"
    normalize: bool = True
    max_length: int = 256
    name: str = ""

    @classmethod
    def from_directory(cls, directory, backend: str = "reference", name: str = "") -> "SentenceEncoder":
        from .data.wordpiece import WordPieceTokenizer
        from .errors import MinilmError
        from .models.bert import BERT
        directory = Path(directory)
        pooling = "mean"
        pooling_file = directory / "1_Pooling" / "config.json"
        if pooling_file.is_file():
            modes = {k.removeprefix("pooling_mode_").removesuffix("_token").removesuffix("_tokens"): v
                     for k, v in json.loads(pooling_file.read_text()).items() if k.startswith("pooling_mode_") and v}
            if list(modes) not in (["mean"], ["cls"]):
                raise MinilmError(f"embed: {pooling_file} asks for pooling {sorted(modes)}; "
                                  f"minilm supports mean or cls pooling")
            pooling = next(iter(modes))
        normalize = True
        modules_file = directory / "modules.json"
        if modules_file.is_file():
            normalize = any(m.get("type", "").endswith("Normalize") for m in json.loads(modules_file.read_text()))
        model = BERT.from_pretrained(directory, pooling="mean" if pooling == "mean" else "first", backend=backend)
        max_length = model.config.context
        st_config = directory / "sentence_bert_config.json"
        if st_config.is_file():
            max_length = min(max_length, int(json.loads(st_config.read_text()).get("max_seq_length", max_length)))
        tokenizer = WordPieceTokenizer.from_pretrained(directory)
        return cls(model, tokenizer, pooling, normalize, max_length, name or directory.name)

    def encode_ids(self, input_ids, attention_mask, token_type_ids=None) -> np.ndarray:
        """One padded batch (B, T) -> sentence vectors (B, C), float32."""
        from .autograd.grad_mode import no_grad
        with no_grad():
            hidden = self.model.encode(input_ids, token_type_ids, key_padding_mask=attention_mask == 0).data
        pooled = mean_pool(hidden, attention_mask) if self.pooling == "mean" else hidden[:, 0]
        return l2_normalize(pooled) if self.normalize else pooled

    def encode(self, sentences, batch_size: int = 32) -> np.ndarray:
        """sentences (list of str) -> (n, C). Batches hold sentences of similar length (sorted, as
        sentence-transformers does) so little compute goes to padding; the output keeps the input order."""
        from .errors import MinilmError
        if isinstance(sentences, str):
            sentences = [sentences]
        sentences = list(sentences)
        if not all(isinstance(s, str) for s in sentences):
            raise MinilmError("embed: sentences must be strings")
        if batch_size < 1:
            raise MinilmError(f"embed: batch_size must be >= 1; got {batch_size}")
        width = self.model.config.d_model
        out = np.zeros((len(sentences), width), dtype=np.float32)
        token_counts = [len(self.tokenizer.encode(s, max_length=self.max_length)) for s in sentences]
        order = np.argsort(token_counts, kind="stable")[::-1]                             # longest first
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            ids, mask, types = self.tokenizer.encode_batch([sentences[i] for i in rows], max_length=self.max_length)
            out[rows] = self.encode_ids(ids, mask, types)
        return out


def load(model: str = DEFAULT_MODEL, backend: str = "reference") -> SentenceEncoder:
    """The SentenceEncoder for a model name (minilm.hub) or a model directory, cached per (model, backend)."""
    key = (str(model), backend)
    if key not in _CACHE:
        from . import hub
        directory = Path(model) if Path(str(model)).is_dir() else hub.find(model)
        _CACHE[key] = SentenceEncoder.from_directory(directory, backend=backend, name=str(model))
    return _CACHE[key]


def embed(sentences, model: str = DEFAULT_MODEL, batch_size: int = 32, backend: str = "reference") -> np.ndarray:
    """Sentence embeddings (n, C) float32, L2-normalised (for all-MiniLM-L6-v2: C = 384, mean pooling,
    at most 256 tokens a sentence). `model`: a name known to minilm.hub or a model directory."""
    return load(model, backend).encode(sentences, batch_size=batch_size)


def cosine_matrix(vectors: np.ndarray) -> np.ndarray:
    """(n, C) -> (n, n) cosine similarities."""
    unit = l2_normalize(np.asarray(vectors, dtype=np.float64))
    return unit @ unit.T
