"""Corpora, tokenizers, batching, and atomic checkpoints."""
import json
import os

import numpy as np
import pytest

from minilm import checkpoint
from minilm.data import (BPETokenizer, CharTokenizer, builtin_corpus, eval_windows, get_batch, load_corpus,
                         load_tokenizer)
from minilm.errors import MinilmError


def test_builtin_corpus_and_deterministic_split():
    corpus = builtin_corpus()
    assert len(corpus) > 300_000 and len(corpus.documents) > 50
    train, val = corpus.split(0.1)
    assert corpus.split(0.1) == (train, val)
    assert 0.08 < len(val) / (len(train) + len(val)) < 0.12


def test_load_corpus_errors(tmp_path):
    with pytest.raises(MinilmError, match="no such file"):
        load_corpus(str(tmp_path / "missing.txt"))
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(MinilmError, match="holds no text"):
        load_corpus(str(empty))
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.txt").write_text("hello world")
    assert load_corpus(str(tmp_path / "d")).documents == ["hello world"]


def test_char_tokenizer_round_trip_and_unknown_characters(tmp_path):
    tok = CharTokenizer.train("hello world")
    ids = tok.encode("hello")
    assert tok.decode(ids) == "hello" and ids.dtype == np.int64
    with pytest.raises(MinilmError, match=r"not in the vocabulary: 'z'"):
        tok.encode("zoo")
    tok.save(tmp_path / "tok.json")
    assert load_tokenizer(tmp_path / "tok.json").chars == tok.chars


def test_bpe_learns_merges_round_trips_any_text_and_saves(tmp_path):
    text = builtin_corpus().documents[0] * 3
    tok = BPETokenizer.train(text, vocab_size=300)
    assert tok.vocab_size == 300
    sample = "The quick brown fox — naïve café 123"
    assert tok.decode(tok.encode(sample)) == sample            # bytes: nothing is unknown
    assert len(tok.encode(text[:2000])) < 2000 * 0.8            # merges compress
    tok.save(tmp_path / "bpe.json")
    again = load_tokenizer(tmp_path / "bpe.json")
    np.testing.assert_array_equal(again.encode(sample), tok.encode(sample))


def test_batches_are_shifted_windows():
    ids = np.arange(100)
    x, y = get_batch(ids, 4, 8, np.random.default_rng(0))
    assert x.shape == (4, 8) and np.all(y == x + 1)
    ex, ey = eval_windows(ids, 10)
    assert ex.shape == (9, 10) and np.all(ey == ex + 1)
    with pytest.raises(MinilmError, match="too few"):
        get_batch(np.arange(5), 2, 8, np.random.default_rng(0))


def test_checkpoint_round_trip_with_metadata(tmp_path):
    tensors = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.ones(2, np.float64)}
    size = checkpoint.save_tensors(tmp_path / "m.safetensors", tensors, {"config": {"d": 3}})
    assert size == os.path.getsize(tmp_path / "m.safetensors")
    loaded, meta = checkpoint.load_tensors(tmp_path / "m.safetensors")
    assert meta == {"config": {"d": 3}}
    for k in tensors:
        np.testing.assert_array_equal(loaded[k], tensors[k])
        assert loaded[k].dtype == tensors[k].dtype


def test_a_failed_save_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "m.safetensors"
    checkpoint.save_tensors(path, {"a": np.zeros(3, np.float32)})
    before = path.read_bytes()

    def explode(*args, **kwargs):
        raise KeyboardInterrupt("killed during the save")
    monkeypatch.setattr(os, "replace", explode)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save_tensors(path, {"a": np.ones(3, np.float32)})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]      # no temporary left behind
    with pytest.raises(MinilmError, match="checkpoint not found"):
        checkpoint.load_tensors(tmp_path / "nope.safetensors")
    (tmp_path / "bad.safetensors").write_bytes(b"garbage")
    with pytest.raises(MinilmError, match="cannot read checkpoint"):
        checkpoint.load_tensors(tmp_path / "bad.safetensors")
    json.dumps({})
