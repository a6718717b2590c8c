"""LoRA gradients: a whole GPT with LoRA applied vs float64 central differences, and one LoRA layer
vs a small PyTorch reimplementation on identical weights (outputs and grads of x, A, B)."""
import numpy as np
import pytest
import torch

import minilm
from minilm import functional as F
from minilm import lora
from minilm.models import GPT, GPTConfig
from minilm.nn import Linear, LoRALinear


def test_gradcheck_of_a_gpt_with_lora_applied():
    model = GPT(GPTConfig(vocab_size=7, context=6, d_model=8, n_heads=2, n_layers=2, seed=3)).to(np.float64)
    lora.apply_lora(model, ["q_proj", "v_proj", "fc2"], r=2, alpha=3)
    rng = np.random.default_rng(0)
    for layer in lora.lora_layers(model).values():
        layer.lora_B.data[...] = 0.3 * rng.standard_normal(layer.lora_B.shape)
    x = rng.integers(0, 7, (2, 6))
    y = rng.integers(0, 7, (2, 6))
    params = [p for p in model.parameters() if p.requires_grad]
    assert len(params) == 12

    def loss(*_):
        logits = model(x)
        return F.cross_entropy(logits.reshape(-1, 7), y.reshape(-1))

    report = minilm.gradcheck(loss, params, max_elements=None)
    assert report.passed, str(report)
    assert sum(c.checked for c in report.inputs) == sum(p.size for p in params)


class TorchLoRALinear(torch.nn.Module):
    """The same layer in PyTorch: y = x W^T + b + s * (x A^T) B^T, W and b frozen."""

    def __init__(self, weight, bias, lora_a, lora_b, scaling):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.tensor(weight), requires_grad=False)
        self.bias = torch.nn.Parameter(torch.tensor(bias), requires_grad=False)
        self.lora_A = torch.nn.Parameter(torch.tensor(lora_a))
        self.lora_B = torch.nn.Parameter(torch.tensor(lora_b))
        self.scaling = scaling

    def forward(self, x):
        return torch.nn.functional.linear(x, self.weight, self.bias) + \
            self.scaling * ((x @ self.lora_A.T) @ self.lora_B.T)


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 1e-5)])
@pytest.mark.parametrize("rslora", [False, True])
def test_lora_layer_matches_torch(dtype, tol, rslora):
    rng = np.random.default_rng(1)
    base = Linear(6, 5).to(dtype)
    layer = LoRALinear(base, r=3, alpha=5.0, rslora=rslora, seed=2).to(dtype)
    layer.lora_B.data[...] = rng.standard_normal((5, 3)).astype(dtype)
    scaling = 5.0 / np.sqrt(3) if rslora else 5.0 / 3
    ref = TorchLoRALinear(base.weight.data, base.bias.data, layer.lora_A.data, layer.lora_B.data, scaling)
    x_np = rng.standard_normal((2, 4, 6)).astype(dtype)
    grad_out = rng.standard_normal((2, 4, 5)).astype(dtype)

    x = minilm.tensor(x_np, requires_grad=True)
    out = layer(x)
    out.backward(grad_out)
    x_t = torch.tensor(x_np, requires_grad=True)
    out_t = ref(x_t)
    out_t.backward(torch.tensor(grad_out))

    scale = max(1.0, float(np.abs(out_t.detach().numpy()).max()))
    np.testing.assert_allclose(out.data, out_t.detach().numpy(), rtol=tol, atol=tol * scale)
    for mine, theirs, name in ((x.grad, x_t.grad, "x"), (layer.lora_A.grad, ref.lora_A.grad, "A"),
                               (layer.lora_B.grad, ref.lora_B.grad, "B")):
        theirs = theirs.numpy()
        np.testing.assert_allclose(mine, theirs, rtol=tol, atol=tol * max(1.0, np.abs(theirs).max()), err_msg=name)
    assert base.weight.grad is None and base.bias.grad is None and ref.weight.grad is None


def test_merged_weight_matches_torch():
    rng = np.random.default_rng(4)
    base = Linear(6, 5).to(np.float64)
    layer = LoRALinear(base, r=2, alpha=6.0)
    layer.lora_B.data[...] = rng.standard_normal((5, 2))
    ref = TorchLoRALinear(base.weight.data.copy(), base.bias.data, layer.lora_A.data, layer.lora_B.data, 3.0)
    layer.merge()
    expected = (ref.weight + ref.scaling * ref.lora_B @ ref.lora_A).detach().numpy()
    np.testing.assert_allclose(base.weight.data, expected, rtol=1e-12, atol=1e-12)
