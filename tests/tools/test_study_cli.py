"""The study tools from the command line: walk, plot-grads, attention-map."""
import numpy as np
import pytest

from minilm.cli import main
from minilm.tools.attention_map import attention_maps
from minilm.tools.walk import tiny_gpt_batch, walk


def test_walk_lists_the_backward_from_loss_to_embeddings_and_checks_an_op(capsys):
    lines = []
    result = walk(op="layer_norm", out=lines.append)
    text = "\n".join(lines)
    assert result["checked"].passed
    assert text.index("cross_entropy") < text.index("[ln_f]")
    assert "dx = rstd * (g*w - mean(g*w)" in text and "numerical check of" in text
    full = []
    walk(out=full.append)
    body = "\n".join(full)
    assert "[blocks.1.attn]" in body and "[blocks.0.ff.fc1]" in body and "[token_embedding]" in body
    assert body.rindex("[token_embedding]") > body.index("[blocks.0.attn]")      # embeddings come last
    with pytest.raises(Exception, match="no backward step named"):
        walk(op="no_such_op", out=lambda line: None)


def test_attention_maps_are_row_stochastic_and_causal():
    model, x, _ = tiny_gpt_batch()
    maps = attention_maps(model, x[0])
    assert maps.shape == (2, 2, 8, 8)
    np.testing.assert_allclose(maps.sum(-1), 1.0, rtol=1e-9)
    assert np.all(np.triu(maps, k=1) == 0)


def test_cli_plot_grads_and_attention_map(tmp_path, capsys):
    data = tmp_path / "d.txt"
    data.write_text("the quick brown fox jumps over the lazy dog. " * 60)
    run = str(tmp_path / "run")
    assert main(["train", "--data", str(data), "--steps", "12", "--context", "16", "--batch", "2", "--out", run,
                 "--no-progress"]) == 0
    assert main(["plot-grads", run]) == 0
    assert (tmp_path / "run" / "grad_health.png").stat().st_size > 5000
    out = str(tmp_path / "att.png")
    assert main(["attention-map", run, "--prompt", "the fox", "--out", out]) == 0
    assert (tmp_path / "att.png").stat().st_size > 5000
    assert main(["walk", "--op", "#61"]) == 0
    assert "gradcheck PASSED" in capsys.readouterr().out
