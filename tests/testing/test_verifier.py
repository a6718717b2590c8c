"""The attention verifier: it must pass correct kernels (reference, reordered float32 online
softmax, torch SDPA, the project's Numba and Triton kernels) and catch every broken one in
broken_attention.py with its shrunk case shown."""
import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from kernels import reference
from kernels.testing import Supports, assert_attention_correct, verify_attention
from kernels.testing.cli import main as cli_main
from kernels.testing.kernel_call import KernelCall
from kernels.testing.oracle import allowed_keys, dense_backward, dense_forward
from kernels.testing.properties import Claims, evaluate
from kernels.testing.strategies import AttentionSpec, boundary_sizes, boundary_specs, build_attention_case

from . import broken_attention as broken

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FAST = dict(max_examples=10, seed=0, dtypes=("float32",), max_seq=33)

# the property each bug must at least break (others may break too)
EXPECTED = {
    "broken_strict_causal": "out", "broken_causal_corner": "out", "broken_rescale_forgotten": "out",
    "broken_finite_sentinel": "masked rows", "broken_last_block_unmasked": "out", "broken_scale_twice": "out",
    "broken_delta_rowsum_dout": "dq", "broken_ds_sign": "dq", "broken_backward_ignores_causal": "dk",
    "broken_gqa_overwrite": "dk", "broken_nan_empty_rows": "finite", "broken_lse_base2": "lse",
    "broken_no_max_subtraction": "finite", "broken_batch_mask": "out", "broken_default_scale": "out",
    "broken_dk_unscaled": "dk", "broken_mask_inverted": "out", "broken_lse_row_max": "lse",
    "broken_mutates_q": "no mutation", "broken_dv_unnormalised": "dv",
}


def test_library_has_at_least_15_distinct_bugs():
    assert len(broken.BUGS) >= 15 and set(EXPECTED) == set(broken.BUGS)


@pytest.mark.parametrize("name", sorted(broken.BUGS))
def test_each_broken_kernel_is_caught_with_its_shrunk_case(name):
    report = verify_attention(getattr(broken, name), getattr(broken, name + "_backward"), **FAST)
    text = str(report)
    assert not report.ok, text
    failure = report.results[EXPECTED[name]].failure
    assert failure is not None, text
    assert failure.spec.describe() in text and "smallest failing case" in text
    assert failure.spec.seq_q * failure.spec.seq_k <= 33 * 33


def test_shrinking_reaches_a_tiny_case():
    """`>` instead of `>=`: a single query and key under causal already shows it."""
    report = verify_attention(broken.broken_strict_causal, broken.broken_strict_causal_backward, **FAST)
    spec = report.results["out"].failure.spec
    assert (spec.batch, spec.heads, spec.seq_q, spec.seq_k, spec.head_dim, spec.causal) == (1, 1, 1, 1, 1, True)
    assert "first mismatch at out[b=0, h=0, i=0, d=0]" in report.results["out"].failure.message


@pytest.mark.parametrize("name", sorted(broken.REORDERED))
@pytest.mark.parametrize("seed", [0, 1])
def test_correct_reordered_kernels_are_never_rejected(name, seed):
    report = verify_attention(getattr(broken, name), getattr(broken, name + "_backward"), max_examples=15,
                              seed=seed, dtypes=("float32", "float64"), max_seq=40)
    assert report.ok, str(report)


@pytest.mark.parametrize("name", sorted(broken.REORDERED))
def test_correct_reordered_float32_at_logits_1e3(name):
    call = KernelCall(getattr(broken, name), getattr(broken, name + "_backward"))
    claims = Claims("bottom-right", True, True, True)
    for seed, (seq_q, seq_k, head_dim) in enumerate([(1, 1, 1), (17, 33, 8), (33, 17, 64), (64, 64, 31)]):
        spec = AttentionSpec(batch=2, kv_heads=2, group=2, seq_q=seq_q, seq_k=seq_k, head_dim=head_dim, causal=seed % 2 == 1,
                             logit=1e3, mask_fraction=0.3, mask_last_key=True, dtype="float32", seed=seed)
        outcome = evaluate(spec, call, claims)
        failures = [c.failure.message for c in outcome.checks.values() if c.failure is not None]
        assert not failures, failures


def test_reference_passes_in_both_layouts():
    assert verify_attention(reference.attention_forward, reference.attention_backward, max_examples=10, seed=3).ok

    def forward_bshd(q, k, v, **flags):
        out, lse = reference.attention_forward(*(x.transpose(0, 2, 1, 3) for x in (q, k, v)), **flags)
        return out.transpose(0, 2, 1, 3), lse
    report = verify_attention(forward_bshd, layout="BSHD", max_examples=10, seed=0)
    assert report.ok, str(report)
    assert not verify_attention(forward_bshd, layout="BHSD", max_examples=5, seed=0).ok


def test_top_left_oracle_differs_from_bottom_right_only_when_lengths_differ():
    rng = np.random.default_rng(0)
    for seq_q, seq_k in [(5, 5), (3, 7), (7, 3)]:
        q, k, v = rng.standard_normal((1, 2, seq_q, 4)), rng.standard_normal((1, 2, seq_k, 4)), rng.standard_normal((1, 2, seq_k, 4))
        top_left = dense_forward(q, k, v, allowed_keys(1, seq_q, seq_k, True, "top-left"), 0.5)[0]
        bottom_right = reference.attention_forward(q, k, v, causal=True, scale=0.5)[0]
        assert np.allclose(top_left, bottom_right) == (seq_q == seq_k)


def test_dense_oracle_matches_the_reference():
    for spec in boundary_specs(max_seq_q=17, max_seq_k=17):
        case = build_attention_case(spec)
        scale = case.scale if case.scale is not None else 1 / np.sqrt(spec.head_dim)
        allowed = allowed_keys(spec.batch, spec.seq_q, spec.seq_k, spec.causal, "bottom-right", case.key_padding_mask)
        out, lse = reference.attention_forward(case.q, case.k, case.v, **case.kwargs())
        grads = reference.attention_backward(case.dout, case.q, case.k, case.v, out, lse, **case.kwargs())
        assert np.allclose(dense_forward(case.q, case.k, case.v, allowed, scale)[0], out, atol=1e-12)
        for mine, theirs in zip(dense_backward(case.dout, case.q, case.k, case.v, allowed, scale), grads):
            assert np.allclose(mine, theirs, atol=1e-10)


def test_boundary_sweep_covers_every_boundary_size():
    specs = boundary_specs(max_seq_q=64, max_seq_k=64, max_head_dim=64)
    for field in ("seq_q", "seq_k", "head_dim"):
        assert set(boundary_sizes(1, 64)) <= {getattr(s, field) for s in specs}


def test_only_claimed_features_are_tested_and_the_rest_listed():
    def no_gqa_no_mask(q, k, v, *, causal, scale, key_padding_mask):
        if k.shape[1] != q.shape[1] or key_padding_mask is not None or causal:
            raise NotImplementedError("plain attention only")
        return reference.attention_forward(q, k, v, scale=scale)
    supports = Supports(causal=None, padding_mask=False, gqa=False)
    report = verify_attention(no_gqa_no_mask, supports=supports, max_examples=10, seed=0)
    assert report.ok, str(report)
    assert {"causal masking", "key_padding_mask", "backward (dq, dk, dv)"} <= set(" ".join(report.untested).split("; ")) or \
        all(word in str(report) for word in ("causal masking", "key_padding_mask", "grouped-query", "backward"))
    assert report.results["dq"].status == "untested"
    assert not verify_attention(no_gqa_no_mask, max_examples=5, seed=0).ok      # claiming everything fails


def test_nondeterministic_kernel_is_caught():
    rng = np.random.default_rng(0)

    def jittery(q, k, v, **flags):
        out, lse = reference.attention_forward(q, k, v, **flags)
        return out + rng.standard_normal() * 1e-18 * (np.abs(out) > 0), lse
    report = verify_attention(jittery, max_examples=5, seed=0, dtypes=("float64",))
    assert report.results["determinism"].failure is not None, str(report)


def test_report_json_reproducer_and_pytest_helper(tmp_path):
    report = verify_attention(broken.broken_lse_base2, broken.broken_lse_base2_backward, **FAST)
    data = json.loads(report.to_json(tmp_path / "report.json"))
    assert data["ok"] is False and data["properties"]["lse"]["status"] == "FAIL"
    assert data["properties"]["lse"]["failure"]["first_mismatch"]["index"] is not None
    script = report.write_reproducer(tmp_path / "repro.py", "lse")
    run = subprocess.run([sys.executable, script], capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 1 and "FAIL lse" in run.stdout, run.stdout + run.stderr
    with pytest.raises(AssertionError, match="FAILED lse"):
        assert_attention_correct(broken.broken_lse_base2, broken.broken_lse_base2_backward, **FAST)
    assert assert_attention_correct(reference.attention_forward, reference.attention_backward, **FAST).ok


def test_cli_exit_status(tmp_path, capsys):
    good = ["kernels.reference:attention_forward", "--backward", "kernels.reference:attention_backward",
            "--max-examples", "5", "--seed", "0", "--dtype", "float64", "--json", str(tmp_path / "ok.json")]
    assert cli_main(good) == 0 and json.loads((tmp_path / "ok.json").read_text())["ok"] is True
    bad = ["tests.testing.broken_attention:broken_scale_twice", "--dtype", "float32", "--max-examples", "5",
           "--seed", "0", "--reproducer", str(tmp_path / "repro.py")]
    assert cli_main(bad) == 1 and (tmp_path / "repro.py").exists()
    assert "FAILED out" in capsys.readouterr().out
    assert cli_main(["no_such_module:f"]) == 2


def test_torch_sdpa_passes_declared_top_left():
    torch = pytest.importorskip("torch", reason="torch is needed for the SDPA check")
    torch.set_num_threads(1)
    report = verify_attention(broken.torch_sdpa, supports=Supports(causal="top-left", returns_lse=False),
                              torch=True, max_examples=8, seed=0, dtypes=("float32",), max_seq=33)
    assert report.ok, str(report)
    assert "lse from the forward" in report.untested
    wrong = verify_attention(broken.torch_sdpa, supports=Supports(causal="bottom-right", returns_lse=False),
                             torch=True, max_examples=4, seed=0, dtypes=("float32",), max_seq=17)
    assert not wrong.ok


def test_numba_kernels_pass():
    if importlib.util.find_spec("numba") is None:
        pytest.skip("numba is not installed (extra `cpu`)")
    import kernels.cpu as cpu
    report = verify_attention(cpu.attention_forward, cpu.attention_backward, max_examples=15, seed=0, max_seq=40)
    assert report.ok, str(report)


TRITON_SCRIPT = """
from kernels.testing import Supports, verify_attention
import kernels.gpu as gpu
report = verify_attention(gpu.attention_forward, gpu.attention_backward, max_examples=3, seed=0, max_seq=9,
                          max_heads=2, dtypes=("float32",), supports=Supports(head_dims=(1, 9)))
print(report)
raise SystemExit(0 if report.ok else 1)
"""


@pytest.mark.interpreter
def test_triton_interpreter_kernels_pass():
    if importlib.util.find_spec("triton") is None or importlib.util.find_spec("torch") is None:
        pytest.skip("triton and torch are not installed (extra `gpu`)")
    env = dict(os.environ, TRITON_INTERPRET="1", PYTHONWARNINGS="ignore")
    run = subprocess.run([sys.executable, "-c", TRITON_SCRIPT], capture_output=True, text=True, cwd=ROOT, env=env,
                         timeout=900)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
