"""Training loop and CLI: exact resume, atomic checkpoints, clear errors for bad input."""
import json

import numpy as np
import pytest

from minilm.cli import main
from minilm.data import CharTokenizer
from minilm.models import GPT, GPTConfig
from minilm.tasks import CausalLMTask
from minilm.train import CHECKPOINT, TrainConfig, load_checkpoint, train

TEXT = ("the quick brown fox jumps over the lazy dog. " * 40 + "pack my box with five dozen liquor jugs. " * 40)


def setup(seed=0, dropout=0.1):
    tok = CharTokenizer.train(TEXT)
    ids = tok.encode(TEXT)
    task = CausalLMTask(ids[:3000], ids[3000:], context=16)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, context=16, d_model=16, n_heads=2, n_layers=1, dropout=dropout))
    return model, task


def config(steps, **kw):
    return TrainConfig(steps=steps, batch_size=4, lr=3e-3, warmup=2, eval_every=3, eval_batches=2, save_every=3,
                       log_every=2, progress=False, **kw)


def test_resume_continues_bit_for_bit(tmp_path):
    model, task = setup()
    full = train(model, task, config(9), tmp_path / "full")
    model, task = setup()
    train(model, task, config(9, max_seconds=0.0), tmp_path / "split")          # stops (and saves) after step 1
    saved_step = load_checkpoint(tmp_path / "split" / CHECKPOINT)[2]["step"]
    assert saved_step == 1
    model, task = setup()
    resumed = train(model, task, config(9), tmp_path / "split", resume=True)
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in full.history]
    assert resumed.val == full.val
    log = json.loads((tmp_path / "split" / "log.json").read_text())
    assert "layers" in log["history"][1] and (tmp_path / "split" / "loss.png").stat().st_size > 1000


def test_training_lowers_the_loss(tmp_path):
    model, task = setup(dropout=0.0)
    result = train(model, task, config(40), tmp_path)
    first = np.mean([h["loss"] for h in result.history[:5]])
    last = np.mean([h["loss"] for h in result.history[-5:]])
    assert last < first - 0.3


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_cli_train_generate_eval_end_to_end(tmp_path, capsys):
    data = write(tmp_path, "data.txt", TEXT)
    out = str(tmp_path / "run")
    assert main(["train", "--data", data, "--steps", "3", "--context", "16", "--batch", "2", "--out", out,
                 "--no-progress"]) == 0
    assert main(["generate", out, "--prompt", "the ", "--max-new-tokens", "5", "--seed", "1"]) == 0
    assert main(["eval", out, "--data", data, "--batches", "2"]) == 0
    text = capsys.readouterr().out
    assert "validation loss" in text and "unigram baseline" in text


def test_cli_bad_input_gives_clear_errors_and_no_half_written_checkpoint(tmp_path, capsys):
    data = write(tmp_path, "data.txt", TEXT)
    assert main(["train", "--data", str(tmp_path / "missing.txt"), "--out", str(tmp_path / "a")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["train", "--data", write(tmp_path, "empty.txt", ""), "--out", str(tmp_path / "b")]) == 2
    assert "holds no text" in capsys.readouterr().err
    assert main(["train", "--data", write(tmp_path, "short.txt", "tiny text " * 10), "--out",
                 str(tmp_path / "c"), "--no-progress"]) == 2
    assert "too few" in capsys.readouterr().err
    assert not (tmp_path / "c" / CHECKPOINT).exists()
    out = str(tmp_path / "run")
    assert main(["train", "--data", data, "--steps", "2", "--context", "16", "--batch", "2", "--out", out,
                 "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["generate", out, "--prompt", "ZZZ€"]) == 2
    assert "not in the vocabulary" in capsys.readouterr().err
    assert main(["generate", str(tmp_path / "nowhere")]) == 2
    assert "no checkpoint" in capsys.readouterr().err
    bert_out = str(tmp_path / "bert")
    assert main(["train", "--model", "bert", "--data", data, "--steps", "2", "--context", "16", "--batch", "2",
                 "--out", bert_out, "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["generate", bert_out]) == 2
    assert "needs a GPT or LSTM LM checkpoint" in capsys.readouterr().err


def test_cli_finetune_classifier_from_a_pretrained_encoder(tmp_path, capsys):
    base = str(tmp_path / "bert")
    assert main(["train", "--model", "bert", "--steps", "1", "--context", "16", "--batch", "2", "--out", base,
                 "--no-progress"]) == 0
    out = tmp_path / "cls"
    assert main(["finetune-classifier", "--base", base, "--passage", "15", "--steps", "2", "--batch", "4",
                 "--out", str(out), "--no-progress"]) == 0
    summary = json.loads((out / "classifier_summary.json").read_text())
    result = summary["results"]["pretrained"]
    assert 0.0 <= result["accuracy"] <= 1.0 and 0.5 <= result["majority_baseline"] < 1.0
    assert "held-out accuracy" in capsys.readouterr().out
    assert main(["finetune-classifier", "--base", base, "--docs", "nope", "--passage", "15", "--out", str(out)]) == 2
    assert "unknown document" in capsys.readouterr().err
    assert main(["finetune-classifier", "--base", base, "--passage", "64", "--out", str(out)]) == 2
    assert "exceeds the encoder's context" in capsys.readouterr().err
    assert main(["finetune-classifier", "--base", str(tmp_path / "nowhere"), "--out", str(out)]) == 2
    assert "no checkpoint" in capsys.readouterr().err
