"""BERT: a bidirectional transformer encoder with a masked-LM head and a classification head.

    ids (B, T), segments (B, T) -> token + position + segment embeddings -> LayerNorm -> dropout
        -> n_layers x post-LN TransformerBlock (self-attention with a key padding mask)
    mlm_logits: dense -> GELU -> LayerNorm -> x @ E^T + bias   (B, T, V), tied to the token embedding
    classify:   pool (first token, or the mean over non-padding tokens) -> dropout -> linear (B, classes)

Special tokens live after the text vocabulary: [MASK] = V_text, [CLS] = V_text + 1, [PAD] = V_text + 2.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import nn
from ..errors import ShapeError


@dataclass
class BERTConfig:
    vocab_size: int                     # text vocabulary + the special tokens
    context: int = 128
    d_model: int = 192
    n_heads: int = 4
    n_layers: int = 4
    d_ff: int | None = None
    dropout: float = 0.0
    num_segments: int = 2
    num_classes: int = 0                # > 0 adds a classification head
    pooling: str = "first"              # "first" (the [CLS] position) or "mean"
    layer_norm_eps: float = 1e-5
    activation: str = "gelu"
    backend: str = "reference"
    seed: int = 0

    NUM_SPECIAL = 3

    @property
    def hidden(self) -> int:
        return self.d_ff or 4 * self.d_model

    def mask_id(self, text_vocab: int) -> int:
        return text_vocab

    def cls_id(self, text_vocab: int) -> int:
        return text_vocab + 1

    def pad_id(self, text_vocab: int) -> int:
        return text_vocab + 2


class BERT(nn.Module):
    def __init__(self, config: BERTConfig):
        super().__init__()
        self.config = config
        c = config
        nn.set_init_seed(config.seed)
        self.token_embedding = nn.Embedding(c.vocab_size, c.d_model)
        self.position_embedding = nn.Embedding(c.context, c.d_model)
        self.segment_embedding = nn.Embedding(c.num_segments, c.d_model)
        self.embed_norm = nn.LayerNorm(c.d_model, eps=c.layer_norm_eps)
        self.drop = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList([
            nn.TransformerBlock(c.d_model, c.n_heads, c.hidden, dropout=c.dropout, causal=False, post_norm=True,
                                eps=c.layer_norm_eps, activation=c.activation, backend=c.backend)
            for _ in range(c.n_layers)])
        self.mlm_dense = nn.Linear(c.d_model, c.d_model)
        self.mlm_norm = nn.LayerNorm(c.d_model, eps=c.layer_norm_eps)
        self.mlm_bias = nn.Parameter(np.zeros(c.vocab_size, dtype=np.float32))
        if c.num_classes:
            self.classifier = nn.Linear(c.d_model, c.num_classes)
        rng = np.random.default_rng(c.seed)
        for name, p in self.named_parameters():
            if p.ndim >= 2:
                p.data[...] = rng.normal(0.0, 0.02, size=p.shape).astype(p.dtype)

    @classmethod
    def from_pretrained(cls, path, num_classes: int = 0, pooling: str = "mean", backend: str = "reference",
                        dropout: float = 0.0, seed: int = 0, verbose: bool = False) -> "BERT":
        """A Hugging Face BERT directory (config.json + model.safetensors, e.g. minilm.hub.find(name)) as a
        minilm BERT in eval mode, float32. Every tensor's name and shape is checked (minilm.models.hf_bert);
        `model.load_report` lists what was loaded, the checkpoint tensors left unused (position_ids,
        pooler.*) and the heads left at their initial values (the MLM head, the classifier)."""
        from .hf_bert import load_hf_bert
        model, report = load_hf_bert(path, num_classes=num_classes, pooling=pooling, backend=backend,
                                     dropout=dropout, seed=seed)
        object.__setattr__(model, "load_report", report)
        if verbose:
            print(report)
        return model

    def encode(self, ids, segments=None, key_padding_mask=None):
        """ids (B, T) int -> hidden states (B, T, C). key_padding_mask (B, T) bool, True = padding."""
        self._name_submodules()
        ids = np.asarray(getattr(ids, "data", ids))
        if ids.ndim != 2:
            raise ShapeError(f"BERT: ids must be (B, T); got shape {ids.shape}")
        batch, length = ids.shape
        if length > self.config.context:
            raise ShapeError(f"BERT: {length} positions exceed the context of {self.config.context}")
        segments = np.zeros_like(ids) if segments is None else np.asarray(segments)
        x = self.token_embedding(ids) + self.position_embedding(np.arange(length)) + self.segment_embedding(segments)
        x = self.drop(self.embed_norm(x))                                               # (B, T, C)
        for block in self.blocks:
            x = block(x, key_padding_mask=key_padding_mask)
        return x

    def _name_submodules(self):
        """encode, classify and mlm_logits are methods, not __call__, so nothing named the sub-modules
        from this model: do it (paths like `blocks.0.attn`, not `attn`) for traces and anomaly reports.
        Runs again when a module appears later (e.g. LoRA wrapping a layer)."""
        if any(m._path is None for m in self.modules()):
            self._assign_paths(self._path or "")

    def mlm_logits(self, ids, segments=None, key_padding_mask=None):
        """(B, T, V): the masked-LM head, its output matrix tied to the token embedding."""
        h = self.encode(ids, segments, key_padding_mask)
        batch, length, width = h.shape
        h = self.mlm_norm(self.mlm_dense(h).gelu())
        logits = h.reshape(batch * length, width) @ self.token_embedding.weight.T + self.mlm_bias
        return logits.reshape(batch, length, self.config.vocab_size)

    def pool(self, hidden, key_padding_mask=None):
        """(B, T, C) -> (B, C): the first token's state, or the mean over non-padding positions."""
        if self.config.pooling == "first":
            return hidden[:, 0]
        if key_padding_mask is None:
            return hidden.mean(axis=1)
        keep = (~np.asarray(key_padding_mask)).astype(hidden.dtype)[:, :, None]         # (B, T, 1)
        return (hidden * keep).sum(axis=1) / np.maximum(keep.sum(axis=1), 1.0)

    def classify(self, ids, segments=None, key_padding_mask=None):
        """(B, classes) logits from the pooled encoder state."""
        if not self.config.num_classes:
            raise ShapeError("BERT.classify: this model has no classification head (num_classes=0)")
        pooled = self.pool(self.encode(ids, segments, key_padding_mask), key_padding_mask)
        return self.classifier(self.drop(pooled))


