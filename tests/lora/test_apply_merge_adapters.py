"""minilm.lora on a whole GPT: targeting, freezing, merge/unmerge, named adapters, adapter files."""
import json

import numpy as np
import pytest

from minilm import lora
from minilm.errors import MinilmError, NonFiniteError
from minilm.models import GPT, GPTConfig
from minilm.nn import LoRALinear

ALL_NAMES = [f"blocks.{i}.{n}" for i in range(2)
             for n in ("attn.q_proj", "attn.k_proj", "attn.v_proj", "attn.out_proj", "ff.fc1", "ff.fc2")]


def make_gpt(dtype=np.float64, seed=0, **overrides):
    options = dict(vocab_size=11, context=8, d_model=8, n_heads=2, n_layers=2, seed=seed)
    options.update(overrides)
    return GPT(GPTConfig(**options)).to(dtype)


def ids(seed=0, batch=2, length=8, vocab=11):
    return np.random.default_rng(seed).integers(0, vocab, (batch, length))


def randomize_adapters(model, seed=1, scale=0.5):
    """B starts at zero (LoRA == base); give every adapter a nonzero update to test against."""
    rng = np.random.default_rng(seed)
    for layer in lora.lora_layers(model).values():
        for name in layer.adapters:
            a, b = layer.lora_pair(name)
            b.data[...] = scale * rng.standard_normal(b.shape)


# ----- targeting ---------------------------------------------------------------------------------
def test_suffix_list_wraps_exactly_those_layers_freezes_the_rest_and_reports_the_share():
    model = make_gpt()
    total_before = model.num_parameters()
    report = lora.apply_lora(model, ["q_proj", "v_proj"], r=2, alpha=4)
    assert report.wrapped == ["blocks.0.attn.q_proj", "blocks.0.attn.v_proj", "blocks.1.attn.q_proj",
                              "blocks.1.attn.v_proj"]
    assert all(isinstance(model.blocks[i].attn.q_proj, LoRALinear) for i in range(2))
    assert not isinstance(model.blocks[0].attn.k_proj, LoRALinear)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {f"{w}.{p}" for w in report.wrapped for p in ("lora_A", "lora_B")}
    assert report.trainable == 4 * (2 * 8 + 8 * 2) and report.total == total_before + report.trainable
    assert report.percent == pytest.approx(100 * report.trainable / report.total)
    text = str(report)
    assert "blocks.1.attn.v_proj" in text and f"{report.percent:.2f}%" in text


def test_full_dotted_name_regex_and_all_linear():
    assert lora.apply_lora(make_gpt(), ["blocks.1.ff.fc2"]).wrapped == ["blocks.1.ff.fc2"]
    assert lora.apply_lora(make_gpt(), r"blocks\.0\.attn\.(k|out)_proj", r=1).wrapped == \
        ["blocks.0.attn.k_proj", "blocks.0.attn.out_proj"]
    with pytest.raises(MinilmError):                   # a regex matches the whole name, not a part of it
        lora.apply_lora(make_gpt(), r"q_proj")
    assert lora.apply_lora(make_gpt(), "all-linear", r=2).wrapped == ALL_NAMES


def test_no_match_lists_the_available_layers_and_double_apply_is_refused():
    model = make_gpt()
    with pytest.raises(MinilmError) as error:
        lora.apply_lora(model, ["query"])
    assert "matches no Linear layer" in str(error.value)
    assert all(name in str(error.value) for name in ALL_NAMES)
    assert not lora.lora_layers(model) and all(p.requires_grad for p in model.parameters())   # untouched
    lora.apply_lora(model, ["q_proj"])
    with pytest.raises(MinilmError, match="add_adapter"):
        lora.apply_lora(model, ["q_proj"])
    assert lora.linear_layer_names(model) == ALL_NAMES   # a wrapped layer keeps its name; its .base is hidden


def test_lora_model_starts_equal_to_base_and_frozen_weights_get_no_gradient():
    model = make_gpt()
    x = ids()
    before = model(x).data.copy()
    lora.apply_lora(model, ["q_proj", "v_proj", "fc1"], r=2)
    np.testing.assert_array_equal(model(x).data, before)          # B = 0: exactly the base
    randomize_adapters(model)
    model(x).sum().backward()
    for name, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None and np.abs(p.grad).sum() > 0, name
        else:
            assert p.grad is None, f"frozen {name} got a gradient"
    stored = sum(p.grad.nbytes for p in model.parameters() if p.grad is not None)
    assert stored == sum(p.data.nbytes for p in model.parameters() if p.requires_grad) < \
        sum(p.data.nbytes for p in model.parameters()) / 5


# ----- merge / unmerge ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype, bound", [(np.float64, 1e-12), (np.float32, 2e-6)])
def test_merge_gives_the_same_outputs_and_unmerge_restores_the_weights(dtype, bound):
    """float32 bound: the logits are O(1); merging rounds W + s B A once per element (~6e-8
    relative), and the merged and unmerged paths sum in different orders, so a few ulps of O(1)."""
    model = make_gpt(dtype)
    lora.apply_lora(model, "all-linear", r=3, alpha=6)
    randomize_adapters(model)
    originals = {n: p.data.copy() for n, p in model.named_parameters() if n.endswith("base.weight")}
    x = ids()
    unmerged = model(x).data.copy()
    lora.merge_lora(model)
    assert all(layer.merged == "default" for layer in lora.lora_layers(model).values())
    merged = model(x).data
    assert np.abs(merged - unmerged).max() <= bound * max(1.0, np.abs(unmerged).max())
    changed = [n for n, p in model.named_parameters() if n in originals and not np.array_equal(p.data, originals[n])]
    assert len(changed) == len(originals)                        # every base weight took its update
    lora.unmerge_lora(model)
    for name, p in model.named_parameters():
        if name in originals:
            np.testing.assert_allclose(p.data, originals[name], rtol=0, atol=bound)
    np.testing.assert_allclose(model(x).data, unmerged, rtol=0, atol=bound)


def test_merge_refuses_nan_anywhere_and_merges_nothing():
    model = make_gpt()
    lora.apply_lora(model, ["q_proj", "v_proj"])
    randomize_adapters(model)
    weights = {n: p.data.copy() for n, p in model.named_parameters()}
    model.blocks[1].attn.v_proj.lora_B.data[0, 0] = np.nan       # the last wrapped layer
    with pytest.raises(NonFiniteError, match="blocks.1.attn.v_proj"):
        lora.merge_lora(model)
    assert all(layer.merged is None for layer in lora.lora_layers(model).values())
    for name, p in model.named_parameters():
        if not name.endswith("v_proj.lora_B"):
            np.testing.assert_array_equal(p.data, weights[name])


# ----- several adapters --------------------------------------------------------------------------
def test_add_switch_disable_delete_adapters():
    model = make_gpt()
    x = ids()
    base_out = model(x).data.copy()
    lora.apply_lora(model, ["q_proj", "v_proj"], r=2, alpha=4)
    report = lora.add_adapter(model, "code", r=4, alpha=4, seed=7)
    assert len(report.wrapped) == 4 and report.r == 4
    assert lora.active_adapter(model) == "code"
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(n.endswith(("lora_A_code", "lora_B_code")) for n in trainable)   # only the active one
    randomize_adapters(model, seed=3)
    code_out = model(x).data.copy()
    lora.set_adapter(model, "default")
    default_out = model(x).data.copy()
    assert not np.allclose(code_out, default_out) and not np.allclose(default_out, base_out)
    assert all(n.endswith(("lora_A", "lora_B")) for n, p in model.named_parameters() if p.requires_grad)
    # each adapter alone equals the base plus its own update: check one layer against the formula
    layer = model.blocks[0].attn.q_proj
    h = np.random.default_rng(5).standard_normal((3, 8))
    a, b = layer.lora_pair("default")
    np.testing.assert_allclose(layer(h).data, h @ layer.base.weight.data.T + layer.base.bias.data
                               + 2.0 * h @ a.data.T @ b.data.T, rtol=1e-12, atol=1e-12)
    lora.disable_adapters(model)
    np.testing.assert_allclose(model(x).data, base_out, rtol=0, atol=1e-12)
    assert model.num_parameters(trainable_only=True) == 0
    lora.set_adapter(model, "code")
    np.testing.assert_array_equal(model(x).data, code_out)
    lora.delete_adapter(model, "code")
    assert not hasattr(model.blocks[0].attn.q_proj, "lora_A_code")
    assert all("code" not in n for n, _ in model.named_parameters())
    np.testing.assert_allclose(model(x).data, base_out, rtol=0, atol=1e-12)    # nothing active now
    lora.set_adapter(model, "default")
    np.testing.assert_array_equal(model(x).data, default_out)
    with pytest.raises(MinilmError, match="no adapter 'code'"):
        lora.set_adapter(model, "code")


# ----- adapter files ------------------------------------------------------------------------------
def test_save_and_load_adapter_round_trip(tmp_path):
    model = make_gpt(np.float32)
    lora.apply_lora(model, ["q_proj", "v_proj"], r=2, alpha=8, rslora=True)
    lora.add_adapter(model, "other", r=1)                 # a second adapter must not leak into the file
    lora.set_adapter(model, "default")
    randomize_adapters(model)
    x = ids()
    expected = model(x).data.copy()
    size = lora.save_adapter(model, tmp_path / "ad")
    assert size == (tmp_path / "ad" / "adapter.safetensors").stat().st_size
    base_bytes = sum(p.data.nbytes for p in model.parameters() if not p.requires_grad)
    assert size < base_bytes / 4
    config = json.loads((tmp_path / "ad" / "adapter_config.json").read_text())
    assert config["r"] == 2 and config["alpha"] == 8 and config["rslora"] is True and config["adapter"] == "default"
    assert config["targets"] == ["blocks.0.attn.q_proj", "blocks.0.attn.v_proj", "blocks.1.attn.q_proj",
                                 "blocks.1.attn.v_proj"]
    assert config["base_config_hash"] == lora.base_config_hash(make_gpt())
    from minilm.checkpoint import load_tensors
    tensors, _ = load_tensors(tmp_path / "ad" / "adapter.safetensors")
    assert sorted(tensors) == sorted(f"{t}.{p}" for t in config["targets"] for p in ("lora_A", "lora_B"))

    fresh = make_gpt(np.float32)                         # same base weights (same seed), no LoRA yet
    report = lora.load_adapter(fresh, tmp_path / "ad")
    assert report.wrapped == config["targets"]
    np.testing.assert_array_equal(fresh(x).data, expected)
    # into a model that already carries another adapter: added under its name, activated
    other = make_gpt(np.float32)
    lora.apply_lora(other, ["q_proj", "v_proj"], adapter="mine")
    lora.load_adapter(other, tmp_path / "ad")
    assert lora.active_adapter(other) == "default"
    np.testing.assert_array_equal(other(x).data, expected)


def test_load_adapter_refuses_another_base_and_bad_files(tmp_path):
    model = make_gpt()
    lora.apply_lora(model, ["q_proj"])
    lora.save_adapter(model, tmp_path / "ad")
    for other in (make_gpt(d_model=12), make_gpt(vocab_size=12), make_gpt(n_layers=3)):
        with pytest.raises(MinilmError, match="another base model"):
            lora.load_adapter(other, tmp_path / "ad")
        assert not lora.lora_layers(other)
    assert lora.base_config_hash(make_gpt(backend="numba")) == lora.base_config_hash(make_gpt())
    with pytest.raises(MinilmError, match="adapter_config.json"):
        lora.load_adapter(make_gpt(), tmp_path)
    config = json.loads((tmp_path / "ad" / "adapter_config.json").read_text())
    config["targets"].append("blocks.1.attn.k_proj")
    (tmp_path / "ad" / "adapter_config.json").write_text(json.dumps(config))
    with pytest.raises(MinilmError, match="lacks"):
        lora.load_adapter(make_gpt(), tmp_path / "ad")


def test_parse_lora_spec():
    assert lora.parse_lora_spec("r=4,alpha=8,targets=q_proj,v_proj") == \
        {"r": 4, "alpha": 8.0, "target_modules": ["q_proj", "v_proj"]}
    assert lora.parse_lora_spec("r=2,dropout=0.1,rslora=true,targets=all-linear") == \
        {"r": 2, "dropout": 0.1, "rslora": True, "target_modules": "all-linear"}
    assert lora.parse_lora_spec(r"targets=re:blocks\.0\..*")["target_modules"] == r"blocks\.0\..*"
    with pytest.raises(MinilmError, match="rank"):
        lora.parse_lora_spec("rank=4")
    with pytest.raises(MinilmError, match="not a valid"):
        lora.parse_lora_spec("r=four")
