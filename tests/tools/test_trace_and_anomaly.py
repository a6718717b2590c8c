"""Traces list exactly the ops that ran, with their gradients; anomaly mode names the culprit op."""
import json

import numpy as np
import pytest

import minilm


def test_trace_of_a_two_op_expression():
    a = minilm.tensor(np.array([[1.0, 2.0], [3.0, 4.0]]), requires_grad=True)
    b = minilm.tensor(np.array([1.0, -1.0]), requires_grad=True)
    with minilm.trace() as tr:
        y = (a * b).sum()
        y.backward()
    assert [(r.phase, r.op) for r in tr.rows] == [
        ("forward", "mul"), ("forward", "sum"),
        ("backward", "sum"), ("backward", "mul"), ("unbroadcast", "unbroadcast[mul input 1]")]
    mul_back = tr.rows[3]
    assert mul_back.small_inputs[0] == [[1.0, -1.0], [1.0, -1.0]]            # dL/da = g * b
    assert mul_back.small_inputs[1] == [[1.0, 2.0], [3.0, 4.0]]              # dL/db before un-broadcasting
    assert tr.rows[4].small_inputs[0] == [4.0, 6.0]                          # summed over the batch axis
    assert tr.rows[4].inputs[0]["norm"] == pytest.approx(np.hypot(4, 6))
    text = tr.step(3)
    assert "da = g * b ; db = g * a" in text and "[ 1. -1.]" in text
    assert "unbroadcast" in tr.table() and len(json.loads(tr.to_json())) == 5
    y2 = (a * 2).sum()                                                       # outside the block: not recorded
    assert len(tr) == 5 and y2.requires_grad


def test_anomaly_mode_names_the_forward_op_that_made_a_nan():
    x = minilm.tensor(np.array([1.0, -1.0, 2.0]), requires_grad=True)
    with pytest.raises(minilm.NonFiniteError, match=r"forward of sqrt produced 1 NaN/inf value\(s\) from finite inputs"):
        with minilm.detect_anomaly():
            (x * 2).sqrt().sum()
    (x * 2).sqrt()                                                            # outside: no check (NumPy warns only)


def test_anomaly_mode_names_the_backward_op_that_made_an_inf():
    x = minilm.tensor(np.array([0.0, 1.0]), requires_grad=True)
    with minilm.detect_anomaly():
        y = x.sqrt().sum()                                                    # forward is finite: sqrt(0) = 0
        with pytest.raises(minilm.NonFiniteError, match=r"backward of sqrt produced 1 NaN/inf gradient"):
            y.backward()


def test_anomaly_mode_names_the_op_and_module_of_a_nan_planted_in_a_model():
    from minilm.models import GPT, GPTConfig
    model = GPT(GPTConfig(vocab_size=11, context=8, d_model=8, n_heads=2, n_layers=2))
    fc1 = model.blocks[1].ff.fc1
    original = fc1.forward
    fc1.forward = lambda x: (original(x) - 100.0).log()         # planted: log of negative numbers
    ids = np.arange(8)[None, :] % 11
    with pytest.raises(minilm.NonFiniteError, match=r"forward of log in blocks\.1\.ff\.fc1 produced \d+ NaN/inf "
                                                      r"value\(s\) from finite inputs"):
        with minilm.detect_anomaly():
            model(ids)
