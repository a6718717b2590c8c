"""Text generation: greedy, temperature, top-k and top-p (nucleus) sampling, seeded, with a stop text.

The model does the incremental work (a KV cache for GPT, the carried (h, c) state for the LSTM):
it exposes `start(ids) -> (logits of the last position, state)` and `advance(id, state)`.
"""
from __future__ import annotations

import numpy as np

from .autograd import no_grad
from .errors import MinilmError


def sample_next(logits: np.ndarray, rng: np.random.Generator, temperature: float = 1.0, top_k: int | None = None,
                top_p: float | None = None, greedy: bool = False) -> int:
    """Pick the next token id from a (V,) logit vector."""
    logits = np.asarray(logits, dtype=np.float64)
    if greedy or temperature == 0:
        return int(np.argmax(logits))
    if temperature < 0:
        raise MinilmError(f"temperature must be >= 0; got {temperature}")
    scaled = logits / temperature
    if top_k is not None:
        if top_k < 1:
            raise MinilmError(f"top_k must be >= 1; got {top_k}")
        kth = np.sort(scaled)[-min(top_k, len(scaled))]
        scaled = np.where(scaled < kth, -np.inf, scaled)
    probs = np.exp(scaled - scaled.max())
    probs /= probs.sum()
    if top_p is not None:
        if not 0 < top_p <= 1:
            raise MinilmError(f"top_p must be in (0, 1]; got {top_p}")
        order = np.argsort(-probs)
        cumulative = np.cumsum(probs[order])
        keep = order[: int(np.searchsorted(cumulative, top_p) + 1)]        # smallest set with mass >= top_p
        trimmed = np.zeros_like(probs)
        trimmed[keep] = probs[keep]
        probs = trimmed / trimmed.sum()
    return int(rng.choice(len(probs), p=probs))


def generate_ids(model, prompt_ids: np.ndarray, max_new_tokens: int, temperature: float = 1.0, top_k=None,
                 top_p=None, greedy: bool = False, seed: int = 0, stop_ids=None, stop_fn=None) -> list[int]:
    """New token ids after prompt_ids (1-D). Stops early when stop_fn(new ids) is true."""
    prompt_ids = np.asarray(prompt_ids, dtype=np.int64)
    if prompt_ids.ndim != 1 or prompt_ids.size == 0:
        raise MinilmError(f"generate: the prompt must be a non-empty 1-D id sequence; got shape {prompt_ids.shape}")
    rng = np.random.default_rng(seed)
    model.eval()
    new: list[int] = []
    with no_grad():
        logits, state = model.start(prompt_ids)
        for _ in range(max_new_tokens):
            token = sample_next(logits, rng, temperature, top_k, top_p, greedy)
            new.append(token)
            if (stop_ids is not None and token in stop_ids) or (stop_fn is not None and stop_fn(new)):
                break
            logits, state = model.advance(token, state)
    return new


def generate_text(model, tokenizer, prompt: str, max_new_tokens: int = 200, temperature: float = 0.8, top_k=None,
                  top_p=None, greedy: bool = False, stop: str | None = None, seed: int = 0) -> str:
    ids = tokenizer.encode(prompt)
    stop_fn = (lambda new: stop in tokenizer.decode(new)) if stop else None
    new = generate_ids(model, ids, max_new_tokens, temperature, top_k, top_p, greedy, seed, stop_fn=stop_fn)
    text = tokenizer.decode(new)
    if stop and stop in text:
        text = text[: text.index(stop) + len(stop)]
    return text
