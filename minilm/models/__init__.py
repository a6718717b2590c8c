"""Models: GPT (causal LM), BERT (encoder with masked-LM and classifier heads), LSTMLM."""
from __future__ import annotations

from .bert import BERT, BERTConfig
from .gpt import GPT, GPTConfig
from .lstm_lm import LSTMLM, LSTMConfig

MODELS = {"gpt": (GPT, GPTConfig), "bert": (BERT, BERTConfig), "lstm": (LSTMLM, LSTMConfig)}


def build_model(kind: str, config: dict):
    from ..errors import MinilmError
    if kind not in MODELS:
        raise MinilmError(f"unknown model type {kind!r}; known: {sorted(MODELS)}")
    model_cls, config_cls = MODELS[kind]
    try:
        return model_cls(config_cls(**config))
    except TypeError as error:
        raise MinilmError(f"{kind} config does not fit: {error}") from None
