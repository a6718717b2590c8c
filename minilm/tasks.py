"""Training tasks: what a batch is, how its loss is computed, how the model is evaluated.

CausalLMTask      next-token prediction (GPT, LSTM LM): x (B, T) -> logits (B, T, V), y = x shifted.
MaskedLMTask      BERT pre-training: 15% of positions chosen; of those 80% -> [MASK], 10% -> a random
                  token, 10% unchanged; loss only on the chosen positions (others have target -100).
ClassificationTask  a label per sequence (fine-tuning an encoder with a classifier head).
"""
from __future__ import annotations

import math

import numpy as np

from . import functional as F
from .autograd import no_grad
from .data.batching import check_windows, eval_windows, get_batch

IGNORE = -100


class CausalLMTask:
    def __init__(self, train_ids: np.ndarray, val_ids: np.ndarray, context: int):
        check_windows(train_ids, context, "training data")
        check_windows(val_ids, context, "validation data")
        self.train_ids, self.val_ids, self.context = train_ids, val_ids, context

    def sample(self, rng, batch_size):
        return get_batch(self.train_ids, batch_size, self.context, rng)

    def tokens(self, batch) -> int:
        return batch[0].size

    def loss(self, model, batch):
        x, y = batch
        logits = model(x)                                          # (B, T, V)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))

    def evaluate(self, model, max_batches: int, batch_size: int = 16) -> dict:
        model.eval()
        xs, ys = eval_windows(self.val_ids, self.context, max_windows=max_batches * batch_size)
        total, count = 0.0, 0
        with no_grad():
            for i in range(0, len(xs), batch_size):
                loss = self.loss(model, (xs[i:i + batch_size], ys[i:i + batch_size]))
                n = xs[i:i + batch_size].size
                total += loss.item() * n
                count += n
        mean = total / count
        return {"loss": mean, "perplexity": math.exp(min(mean, 50.0)), "tokens": count}


def mask_tokens(x: np.ndarray, rng, vocab_size: int, mask_id: int, special_ids=(), rate: float = 0.15):
    """BERT's rule. Returns (inputs, targets): targets = original id where chosen, else -100."""
    chosen = rng.random(x.shape) < rate
    for sid in special_ids:
        chosen &= x != sid
    targets = np.where(chosen, x, IGNORE)
    roll = rng.random(x.shape)
    inputs = x.copy()
    inputs[chosen & (roll < 0.8)] = mask_id                                   # 80%: [MASK]
    swap = chosen & (roll >= 0.8) & (roll < 0.9)                              # 10%: a random token
    inputs[swap] = rng.integers(0, vocab_size, size=int(swap.sum()))
    return inputs, targets                                                    # 10%: left unchanged


class MaskedLMTask:
    """x (B, T) windows of text tokens; the model sees masked inputs, predicts the originals."""

    def __init__(self, train_ids, val_ids, context: int, text_vocab: int, mask_id: int):
        check_windows(train_ids, context, "training data")
        check_windows(val_ids, context, "validation data")
        self.train_ids, self.val_ids, self.context = train_ids, val_ids, context
        self.text_vocab, self.mask_id = text_vocab, mask_id

    def sample(self, rng, batch_size):
        x, _ = get_batch(self.train_ids, batch_size, self.context, rng)
        return mask_tokens(x, rng, self.text_vocab, self.mask_id)

    def tokens(self, batch) -> int:
        return batch[0].size

    def loss(self, model, batch):
        inputs, targets = batch
        logits = model.mlm_logits(inputs)                                     # (B, T, V)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=IGNORE)

    def evaluate(self, model, max_batches: int, batch_size: int = 16) -> dict:
        model.eval()
        rng = np.random.default_rng(1234)                                     # the same masks every time
        xs, _ = eval_windows(self.val_ids, self.context, max_windows=max_batches * batch_size)
        total, count = 0.0, 0
        with no_grad():
            for i in range(0, len(xs), batch_size):
                inputs, targets = mask_tokens(xs[i:i + batch_size], rng, self.text_vocab, self.mask_id)
                n = int((targets != IGNORE).sum())
                if n == 0:
                    continue
                total += self.loss(model, (inputs, targets)).item() * n
                count += n
        mean = total / max(count, 1)
        return {"loss": mean, "perplexity": math.exp(min(mean, 50.0)), "tokens": count}


class ClassificationTask:
    """(ids (N, T), labels (N,)) for training and validation; the model returns logits (B, classes)."""

    def __init__(self, train_x, train_y, val_x, val_y, num_classes: int):
        self.train_x, self.train_y, self.val_x, self.val_y = train_x, train_y, val_x, val_y
        self.num_classes = num_classes

    def sample(self, rng, batch_size):
        pick = rng.integers(0, len(self.train_x), size=batch_size)
        return self.train_x[pick], self.train_y[pick]

    def tokens(self, batch) -> int:
        return batch[0].size

    def loss(self, model, batch):
        x, y = batch
        return F.cross_entropy(model.classify(x), y)

    def evaluate(self, model, max_batches: int = 0, batch_size: int = 32) -> dict:
        model.eval()
        correct, total_loss = 0, 0.0
        with no_grad():
            for i in range(0, len(self.val_x), batch_size):
                x, y = self.val_x[i:i + batch_size], self.val_y[i:i + batch_size]
                logits = model.classify(x)
                total_loss += F.cross_entropy(logits, y).item() * len(y)
                correct += int((logits.data.argmax(axis=-1) == y).sum())
        n = len(self.val_x)
        majority = np.bincount(self.val_y, minlength=self.num_classes).max() / n
        return {"loss": total_loss / n, "accuracy": correct / n, "majority_baseline": float(majority), "examples": n}



