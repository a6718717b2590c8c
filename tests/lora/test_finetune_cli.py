"""`minilm finetune` (LoRA and full) and `minilm generate --adapter`, end to end on a tiny model."""
import json

from dataclasses import asdict

import numpy as np

from minilm import lora
from minilm.checkpoint import save_tensors
from minilm.cli import main
from minilm.commands.finetune_cmd import fit_text_to_vocabulary
from minilm.data import CharTokenizer
from minilm.models import GPT, GPTConfig
from minilm.runs import load_trained
from minilm.train import CHECKPOINT

PROSE = ("the quick brown fox jumps over the lazy dog. " * 40 + "pack my box with five dozen liquor jugs? " * 40)
CODE = "def f(x):\n    return x + 1  # $cost\n\n" * 80            # '$', '(', ':', digits... unknown to the base


def base_run(tmp_path):
    """A small trained-looking base checkpoint (as `minilm train` writes it) and a code file."""
    tokenizer = CharTokenizer.train(PROSE)
    config = GPTConfig(vocab_size=tokenizer.vocab_size, context=16, d_model=16, n_heads=2, n_layers=2)
    model = GPT(config)
    out = tmp_path / "base"
    save_tensors(out / CHECKPOINT, {f"model.{k}": v for k, v in model.state_dict().items()},
                 {"model_type": "gpt", "model_config": asdict(config), "tokenizer": tokenizer.to_json(),
                  "data": "prose"})
    code = tmp_path / "code.txt"
    code.write_text(CODE)
    return str(out), str(code)


def test_unknown_characters_are_replaced_by_a_known_fallback():
    tokenizer = CharTokenizer.train("ab? ")
    text, replaced = fit_text_to_vocabulary("a$b$$c", tokenizer)
    assert text == "a?b???" and replaced == {"$": 3, "c": 1}
    assert fit_text_to_vocabulary("ab", CharTokenizer.train("ab ")) == ("ab", {})
    assert fit_text_to_vocabulary("a$", CharTokenizer.train("a "))[0] == "a "       # no '?': a space


def test_finetune_lora_writes_a_small_adapter_that_generate_loads(tmp_path, capsys):
    base, code = base_run(tmp_path)
    out = tmp_path / "lora"
    capsys.readouterr()
    assert main(["finetune", "--base", base, "--data", code, "--lora", "r=2,alpha=4,targets=q_proj,v_proj",
                 "--steps", "3", "--batch", "2", "--eval-every", "2", "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "unknown to the base vocabulary replaced" in printed and "'$'" in printed
    assert sorted(p.name for p in out.iterdir()) == ["adapter.safetensors", "adapter_config.json", "log.json",
                                                     "loss.png", "summary.json"]
    size = (out / "adapter.safetensors").stat().st_size
    assert f"adapter.safetensors ({size / 1000:,.1f} kB)" in printed
    summary = json.loads((out / "summary.json").read_text())
    model, _, _ = load_trained(base)
    assert summary["total_parameters"] == model.num_parameters() + summary["trainable_parameters"]
    assert summary["adapter_bytes"] == size and summary["gradient_bytes"] < summary["gradient_bytes_if_full"] / 5
    assert summary["optimizer_state_bytes"] == 2 * 4 * summary["trainable_parameters"]      # Adam m, v in float32
    assert [c["step"] for c in summary["val_curve"]] == [0, 2, 3]

    # the adapter trained: B moved away from zero, so the adapted model differs from the base
    lora.load_adapter(model, out)
    assert any(np.abs(layer.lora_B.data).max() > 0 for layer in lora.lora_layers(model).values())
    assert main(["generate", base, "--adapter", str(out), "--prompt", "the ", "--max-new-tokens", "5"]) == 0
    assert capsys.readouterr().out.startswith("the ")


def test_finetune_full_writes_a_loadable_checkpoint_and_bad_input_is_clear(tmp_path, capsys):
    base, code = base_run(tmp_path)
    out = tmp_path / "full"
    assert main(["finetune", "--base", base, "--data", code, "--steps", "2", "--batch", "2", "--eval-every", "1",
                 "--out", str(out), "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["method"] == "full" and summary["trainable_percent"] == 100.0
    assert summary["optimizer_state_bytes"] == 2 * 4 * summary["total_parameters"]
    tuned, _, metadata = load_trained(out)
    original, _, _ = load_trained(base)
    assert metadata["finetuned_from"] == base
    assert any(not np.array_equal(a.data, b.data) for a, b in zip(tuned.parameters(), original.parameters()))
    assert main(["generate", str(out), "--prompt", "the ", "--max-new-tokens", "3"]) == 0
    assert main(["eval", str(out), "--batches", "2"]) == 0       # code with '$' evaluates as it trained
    capsys.readouterr()
    assert main(["finetune", "--base", base, "--data", code, "--lora", "r=2,targets=nothing", "--steps", "1",
                 "--out", str(tmp_path / "x"), "--no-progress"]) == 2
    error = capsys.readouterr().err
    assert "matches no Linear layer" in error and "blocks.0.attn.q_proj" in error
