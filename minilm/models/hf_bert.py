"""Load a Hugging Face BERT directory (config.json + model.safetensors) into minilm's BERT.

    model, report = load_hf_bert(path)            # or BERT.from_pretrained(path)
    print(report)                                 # loaded / unused / left-initialised tensors

Hugging Face's BertLayer is the same post-LN block as minilm's TransformerBlock(post_norm=True):
    x = LayerNorm(x + dense(self_attention(x)))          attention.output.{dense, LayerNorm}
    x = LayerNorm(x + output.dense(gelu(intermediate.dense(x))))
so every tensor maps one to one, and no layout changes: HF Linear weights are (out, in) like ours.
The table below is the whole mapping; each name and shape is checked before anything is copied.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import MinilmError, ShapeError

# minilm name <- Hugging Face name (BertModel, without the "bert." prefix of BertFor* checkpoints)
EMBEDDING_NAMES = {
    "token_embedding.weight": "embeddings.word_embeddings.weight",        # (V, C)
    "position_embedding.weight": "embeddings.position_embeddings.weight",  # (P, C)
    "segment_embedding.weight": "embeddings.token_type_embeddings.weight",  # (2, C)
    "embed_norm.weight": "embeddings.LayerNorm.weight",                    # (C,)
    "embed_norm.bias": "embeddings.LayerNorm.bias",
}
LAYER_NAMES = {                                                            # per block i
    "attn.q_proj": "attention.self.query",           # weight (C, C), bias (C,)
    "attn.k_proj": "attention.self.key",
    "attn.v_proj": "attention.self.value",
    "attn.out_proj": "attention.output.dense",
    "ln1": "attention.output.LayerNorm",             # after the attention residual (post-LN)
    "ff.fc1": "intermediate.dense",                  # weight (F, C)
    "ff.fc2": "output.dense",                        # weight (C, F)
    "ln2": "output.LayerNorm",                       # after the feed-forward residual
}
# tensors of a BertModel checkpoint that minilm's encoder has no use for
KNOWN_UNUSED_PREFIXES = ("embeddings.position_ids", "pooler.")


def name_table(n_layers: int) -> dict[str, str]:
    """{minilm parameter name: Hugging Face tensor name} for an encoder of n_layers blocks."""
    table = dict(EMBEDDING_NAMES)
    for i in range(n_layers):
        for ours, theirs in LAYER_NAMES.items():
            for leaf in ("weight", "bias"):
                table[f"blocks.{i}.{ours}.{leaf}"] = f"encoder.layer.{i}.{theirs}.{leaf}"
    return table


@dataclass
class LoadReport:
    """What from_pretrained did with each tensor."""
    path: str
    loaded: list = field(default_factory=list)        # minilm names filled from the checkpoint
    unused: list = field(default_factory=list)        # checkpoint tensors not used (name, shape)
    initialised: list = field(default_factory=list)   # minilm parameters the checkpoint lacks (heads)

    def __str__(self):
        lines = [f"loaded {len(self.loaded)} tensors from {self.path}"]
        if self.unused:
            lines.append("unused checkpoint tensors: " + ", ".join(f"{n} {tuple(s)}" for n, s in self.unused))
        if self.initialised:
            lines.append("left at their initial values (not in the checkpoint): " + ", ".join(self.initialised))
        return "\n".join(lines)


def read_config(directory: Path) -> dict:
    """config.json -> BERTConfig keyword arguments; refuses what minilm's BERT cannot represent."""
    path = directory / "config.json"
    if not path.is_file():
        raise MinilmError(f"from_pretrained: {directory} has no config.json (expected a Hugging Face BERT directory)")
    hf = json.loads(path.read_text())
    required = ("vocab_size", "hidden_size", "num_attention_heads", "num_hidden_layers", "intermediate_size",
                "max_position_embeddings", "type_vocab_size")
    missing = [key for key in required if key not in hf]
    if missing:
        raise MinilmError(f"from_pretrained: {path} lacks {missing}")
    if hf.get("model_type", "bert") != "bert":
        raise MinilmError(f"from_pretrained: model_type must be 'bert'; {path} says {hf.get('model_type')!r}")
    if hf.get("hidden_act", "gelu") != "gelu":
        raise MinilmError(f"from_pretrained: only hidden_act 'gelu' (exact erf GELU) is supported; "
                          f"{path} says {hf.get('hidden_act')!r}")
    if hf.get("position_embedding_type", "absolute") != "absolute":
        raise MinilmError(f"from_pretrained: only absolute position embeddings are supported; "
                          f"{path} says {hf.get('position_embedding_type')!r}")
    return {"vocab_size": hf["vocab_size"], "context": hf["max_position_embeddings"], "d_model": hf["hidden_size"],
            "n_heads": hf["num_attention_heads"], "n_layers": hf["num_hidden_layers"],
            "d_ff": hf["intermediate_size"], "num_segments": hf["type_vocab_size"],
            "layer_norm_eps": float(hf.get("layer_norm_eps", 1e-12)), "activation": "gelu"}


def read_tensors(directory: Path) -> dict[str, np.ndarray]:
    path = directory / "model.safetensors"
    if not path.is_file():
        raise MinilmError(f"from_pretrained: {directory} has no model.safetensors (only the safetensors format "
                          f"is read: no pickle)")
    try:
        from safetensors import safe_open
    except ImportError:
        raise MinilmError("from_pretrained needs safetensors: pip install safetensors") from None
    with safe_open(str(path), framework="np") as f:
        tensors = {name: f.get_tensor(name) for name in f.keys()}
    # BertFor* checkpoints prefix the encoder with "bert."; old ones call LayerNorm's parameters gamma/beta
    renamed = {}
    for name, value in tensors.items():
        name = name.removeprefix("bert.")
        if ".LayerNorm." in name:
            name = name.replace(".gamma", ".weight").replace(".beta", ".bias")
        renamed[name] = value
    return renamed


def load_hf_bert(path, num_classes: int = 0, pooling: str = "mean", backend: str = "reference",
                 dropout: float = 0.0, seed: int = 0):
    """(BERT in eval mode, float32, LoadReport) from a Hugging Face BERT directory."""
    from .bert import BERT, BERTConfig
    directory = Path(path)
    if not directory.is_dir():
        raise MinilmError(f"from_pretrained: {directory} is not a directory (use minilm.hub.find(name) for an "
                          f"installed model)")
    config = BERTConfig(**read_config(directory), num_classes=num_classes, pooling=pooling, backend=backend,
                        dropout=dropout, seed=seed)
    tensors = read_tensors(directory)
    model = BERT(config)
    own = dict(model.named_parameters())
    table = name_table(config.n_layers)

    missing = [f"{theirs} (for {ours})" for ours, theirs in table.items() if theirs not in tensors]
    mismatched = [f"{theirs}: checkpoint {tensors[theirs].shape}, minilm {ours} {own[ours].shape}"
                  for ours, theirs in table.items() if theirs in tensors and tensors[theirs].shape != own[ours].shape]
    if missing or mismatched:
        parts = [f"from_pretrained({directory}): the checkpoint does not fit minilm's BERT"]
        if missing:
            parts.append("missing: " + ", ".join(missing))
        if mismatched:
            parts.append("shape mismatch: " + "; ".join(mismatched))
        raise ShapeError("\n  ".join(parts))
    used = set(table.values())
    surprising = [n for n in tensors if n not in used and not n.startswith(KNOWN_UNUSED_PREFIXES)]
    if surprising:
        raise MinilmError(f"from_pretrained({directory}): tensors with no place in minilm's BERT: {sorted(surprising)} "
                          f"(a BERT variant this loader does not know)")

    report = LoadReport(str(directory))
    for ours, theirs in table.items():
        value = tensors[theirs]
        if value.dtype.kind != "f":
            raise MinilmError(f"from_pretrained: {theirs} has dtype {value.dtype}; expected floating point")
        own[ours].data[...] = value.astype(np.float32)
        report.loaded.append(ours)
    report.unused = sorted((n, tuple(v.shape)) for n, v in tensors.items() if n not in used)
    report.initialised = sorted(n for n in own if n not in table)
    model.eval()
    return model, report
