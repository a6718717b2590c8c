"""Size presets for `minilm train --preset NAME`: model shapes and training settings.

tiny:  a useful demo in about 5 minutes on 2 CPU cores (character GPT on the built-in corpus).
small: a bigger model for longer runs.
"""
from __future__ import annotations

PRESETS = {
    "gpt": {
        "tiny": {"model": dict(context=128, d_model=192, n_heads=4, n_layers=4, dropout=0.0),
                 "train": dict(steps=600, batch_size=16, lr=3e-3, warmup=40, eval_every=100, save_every=100)},
        "small": {"model": dict(context=256, d_model=384, n_heads=6, n_layers=6, dropout=0.1),
                  "train": dict(steps=3000, batch_size=16, lr=1e-3, warmup=100, eval_every=250, save_every=250)},
    },
    "lstm": {
        "tiny": {"model": dict(context=64, embed_dim=128, hidden_size=384, num_layers=1, dropout=0.0),
                 "train": dict(steps=600, batch_size=32, lr=3e-3, warmup=30, eval_every=100, save_every=100)},
        "small": {"model": dict(context=128, embed_dim=256, hidden_size=768, num_layers=2, dropout=0.1),
                  "train": dict(steps=3000, batch_size=32, lr=2e-3, warmup=100, eval_every=250, save_every=250)},
    },
    "bert": {
        "tiny": {"model": dict(context=128, d_model=192, n_heads=4, n_layers=4, dropout=0.0),
                 "train": dict(steps=600, batch_size=16, lr=2e-3, warmup=40, eval_every=100, save_every=100)},
        "small": {"model": dict(context=256, d_model=384, n_heads=6, n_layers=6, dropout=0.1),
                  "train": dict(steps=3000, batch_size=16, lr=1e-3, warmup=100, eval_every=250, save_every=250)},
    },
}


def preset(model: str, name: str) -> dict:
    from .errors import MinilmError
    try:
        return PRESETS[model][name]
    except KeyError:
        raise MinilmError(f"no preset {name!r} for model {model!r}; choose from "
                          f"{sorted(PRESETS.get(model, {}))}") from None
