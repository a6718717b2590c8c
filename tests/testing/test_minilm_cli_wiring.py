"""`minilm verify-attention` is the verifier's CLI: exit 0 for a correct kernel, 1 for a broken one."""
from minilm.cli import main


def test_minilm_verify_attention_passes_the_reference_and_fails_a_broken_kernel(capsys):
    ok = main(["verify-attention", "kernels.reference:attention_forward", "--backward",
               "kernels.reference:attention_backward", "--max-examples", "3", "--seed", "0"])
    assert ok == 0 and "every claimed property held" in capsys.readouterr().out
    bad = main(["verify-attention", "tests.testing.broken_attention:broken_rescale_forgotten", "--backward",
                "tests.testing.broken_attention:broken_rescale_forgotten_backward", "--dtype", "float32",
                "--max-examples", "3", "--seed", "0"])
    assert bad == 1 and "FAILED out" in capsys.readouterr().out
