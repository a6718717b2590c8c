"""Models: shapes, gradients of whole models vs finite differences (gradcheck_model), generation."""
import numpy as np
import pytest

import minilm
import minilm.functional as F
from minilm.generate import generate_ids, sample_next
from minilm.models import BERT, GPT, LSTMLM, BERTConfig, GPTConfig, LSTMConfig
from minilm.tasks import mask_tokens
from minilm.tools.gradcheck_model import gradcheck_model

RNG = np.random.default_rng(0)
IDS = RNG.integers(0, 11, size=(2, 6))
TARGETS = RNG.integers(0, 11, size=(2, 6))


def lm_loss(model):
    logits = model(IDS)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), TARGETS.reshape(-1))


def small_gpt():
    return GPT(GPTConfig(vocab_size=11, context=8, d_model=8, n_heads=2, n_layers=2))


def small_bert(**kw):
    return BERT(BERTConfig(vocab_size=11, context=8, d_model=8, n_heads=2, n_layers=2, **kw))


def small_lstm():
    return LSTMLM(LSTMConfig(vocab_size=11, embed_dim=5, hidden_size=6, num_layers=2))


@pytest.mark.parametrize("make,loss", [
    (small_gpt, lm_loss),
    (small_lstm, lm_loss),
    (small_bert, lambda m: F.cross_entropy(m.mlm_logits(IDS).reshape(-1, 11), TARGETS.reshape(-1))),
    (lambda: small_bert(num_classes=3, pooling="mean"),
     lambda m: F.cross_entropy(m.classify(IDS, key_padding_mask=IDS == 0), np.array([0, 2]))),
], ids=["gpt", "lstm", "bert-mlm", "bert-classifier"])
def test_gradcheck_model_passes_on_every_model(make, loss):
    report = gradcheck_model(make(), loss, samples_per_param=3)
    assert report.passed, str(report)
    assert len(report.params) >= 10


def test_gradcheck_model_fails_on_a_planted_error():
    class WrongTanh(minilm.Function):
        formula = "WRONG on purpose"

        @staticmethod
        def forward(ctx, a):
            return np.tanh(a)

        @staticmethod
        def backward(ctx, g):
            return g                                          # forgets the (1 - tanh^2) factor

    model = small_gpt()
    original = model.ln_f.forward
    model.ln_f.forward = lambda x: WrongTanh.apply(original(x))
    report = gradcheck_model(model, lm_loss, samples_per_param=3)
    assert not report.passed
    assert report.failures() and "NO" in str(report)


def test_models_keep_the_original_untouched_by_gradcheck_and_are_float32():
    model = small_gpt()
    before = {n: p.data.copy() for n, p in model.named_parameters()}
    gradcheck_model(model, lm_loss, samples_per_param=1)
    for n, p in model.named_parameters():
        assert p.dtype == np.float32 and np.array_equal(p.data, before[n])


def test_gpt_head_is_tied_and_generation_is_seeded():
    model = small_gpt()
    names = [n for n, _ in model.named_parameters()]
    assert not any("head" in n for n in names)
    a = generate_ids(model, np.array([1, 2, 3]), 20, temperature=1.0, seed=5)
    b = generate_ids(model, np.array([1, 2, 3]), 20, temperature=1.0, seed=5)
    c = generate_ids(model, np.array([1, 2, 3]), 20, greedy=True)
    assert a == b and len(a) == 20 and len(c) == 20                 # past the context of 8: the window slides
    lstm = small_lstm()
    assert generate_ids(lstm, np.array([4]), 10, seed=1) == generate_ids(lstm, np.array([4]), 10, seed=1)


def test_sampling_rules():
    rng = np.random.default_rng(0)
    logits = np.array([0.0, 5.0, 4.9, -3.0])
    assert sample_next(logits, rng, greedy=True) == 1
    picks = {sample_next(logits, rng, temperature=1.0, top_k=2) for _ in range(200)}
    assert picks == {1, 2}
    picks = {sample_next(logits, rng, temperature=1.0, top_p=0.5) for _ in range(200)}
    assert picks == {1}
    with pytest.raises(minilm.MinilmError, match="top_p"):
        sample_next(logits, rng, top_p=0.0)


def test_bert_masking_rule_80_10_10():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 50, size=(200, 100))
    inputs, targets = mask_tokens(x, rng, vocab_size=50, mask_id=50)
    chosen = targets != -100
    assert 0.14 < chosen.mean() < 0.16
    masked = (inputs == 50) & chosen
    unchanged = (inputs == x) & chosen
    assert 0.78 < masked.sum() / chosen.sum() < 0.82
    assert 0.08 < (chosen & ~masked & ~unchanged).sum() / chosen.sum() < 0.12     # random replacements
    assert np.all(inputs[~chosen] == x[~chosen]) and np.all(targets[chosen] == x[chosen])
