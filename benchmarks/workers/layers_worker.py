"""One side of the layer benchmark, in its own process: minilm or torch, one layer, forward+backward.

Layers (float32, the same weights in both libraries, drawn from one NumPy seed):
  mha:        MultiHeadAttention, dim 256, 8 heads, seq 256, batch 8, self-attention (non-causal)
  mha_causal: the same, causal
  lstm:       one-layer LSTM, input 128, hidden 512, seq 64, batch 64, batch_first
One timed iteration = forward, then backward with a fixed upstream gradient, then clearing the
gradients. Prints one JSON line: median seconds per iteration; with --dump DIR it first writes the
output and the gradients of x and of one weight, so the driver can check that both sides agree.
"""
import argparse
import json
import os
import statistics
import time

import numpy as np

SHAPES = {"mha": dict(batch=8, seq=256, dim=256, heads=8), "mha_causal": dict(batch=8, seq=256, dim=256, heads=8),
          "lstm": dict(batch=64, seq=64, input=128, hidden=512)}


def make_data(layer, seed=0):
    rng = np.random.default_rng(seed)
    s = SHAPES[layer]
    f32 = lambda *shape, scale=1.0: (rng.standard_normal(shape) * scale).astype(np.float32)  # noqa: E731
    if layer.startswith("mha"):
        d = s["dim"]
        return {"x": f32(s["batch"], s["seq"], d), "g": f32(s["batch"], s["seq"], d),
                **{f"w{n}": f32(d, d, scale=d ** -0.5) for n in "qkvo"}, **{f"b{n}": f32(d, scale=0.1) for n in "qkvo"}}
    h, i = s["hidden"], s["input"]
    return {"x": f32(s["batch"], s["seq"], i), "g": f32(s["batch"], s["seq"], h),
            "w_ih": f32(4 * h, i, scale=h ** -0.5), "w_hh": f32(4 * h, h, scale=h ** -0.5),
            "b_ih": f32(4 * h, scale=0.1), "b_hh": f32(4 * h, scale=0.1)}


def minilm_step(layer, data, backend):
    import minilm
    from minilm import nn
    s = SHAPES[layer]
    if layer.startswith("mha"):
        module = nn.MultiHeadAttention(s["dim"], s["heads"], causal=layer == "mha_causal", backend=backend)
        for n in "qkvo":
            proj = getattr(module, f"{n}_proj" if n != "o" else "out_proj")
            proj.weight.data[...] = data[f"w{n}"]
            proj.bias.data[...] = data[f"b{n}"]
        probe = module.q_proj.weight
    else:
        module = nn.LSTM(s["input"], s["hidden"])
        for name in ("w_ih", "w_hh", "b_ih", "b_hh"):
            getattr(module, name.replace("w_", "weight_").replace("b_", "bias_") + "_l0").data[...] = data[name]
        probe = module.weight_hh_l0
    x = minilm.tensor(data["x"], requires_grad=True)

    def step():
        out = module(x)
        out = out[0] if isinstance(out, tuple) else out
        out.backward(data["g"])
        result = out.data, x.grad, probe.grad
        x.grad = None
        module.zero_grad()
        return result
    return step


def torch_step(layer, data, threads):
    import torch
    torch.set_num_threads(threads)
    s = SHAPES[layer]
    t = torch.from_numpy
    if layer.startswith("mha"):
        module = torch.nn.MultiheadAttention(s["dim"], s["heads"], batch_first=True)
        with torch.no_grad():
            module.in_proj_weight.copy_(t(np.concatenate([data["wq"], data["wk"], data["wv"]])))
            module.in_proj_bias.copy_(t(np.concatenate([data["bq"], data["bk"], data["bv"]])))
            module.out_proj.weight.copy_(t(data["wo"]))
            module.out_proj.bias.copy_(t(data["bo"]))
        causal = layer == "mha_causal"
        mask = torch.nn.Transformer.generate_square_subsequent_mask(s["seq"]) if causal else None

        def forward(x):
            return module(x, x, x, need_weights=False, attn_mask=mask, is_causal=causal)[0]

        def probe_grad():
            return module.in_proj_weight.grad[: s["dim"]]
    else:
        module = torch.nn.LSTM(s["input"], s["hidden"], batch_first=True)
        with torch.no_grad():
            for name in ("w_ih", "w_hh", "b_ih", "b_hh"):
                getattr(module, name.replace("w_", "weight_").replace("b_", "bias_") + "_l0").copy_(t(data[name]))

        def forward(x):
            return module(x)[0]

        def probe_grad():
            return module.weight_hh_l0.grad
    x = t(data["x"]).requires_grad_(True)
    g = t(data["g"])

    def step():
        out = forward(x)
        out.backward(g)
        result = out.detach().numpy(), x.grad.numpy().copy(), probe_grad().numpy().copy()
        x.grad = None
        module.zero_grad(set_to_none=True)
        return result
    return step


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--lib", choices=["minilm", "torch"], required=True)
    parser.add_argument("--layer", choices=sorted(SHAPES), required=True)
    parser.add_argument("--backend", default="reference", help="minilm attention backend")
    parser.add_argument("--iters", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--dump", default=None, help="write out, dx, dprobe as .npy files into this folder")
    args = parser.parse_args()
    data = make_data(args.layer)
    if args.lib == "minilm":
        step = minilm_step(args.layer, data, args.backend)
    else:
        step = torch_step(args.layer, data, args.threads)
    first = step()
    if args.dump:
        os.makedirs(args.dump, exist_ok=True)
        for name, array in zip(("out", "dx", "dprobe"), first):
            np.save(os.path.join(args.dump, f"{name}.npy"), np.asarray(array))
    step()
    times = []
    for _ in range(args.iters):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    print(json.dumps({"lib": args.lib, "layer": args.layer, "backend": args.backend,
                      "seconds": statistics.median(times), "min_seconds": min(times)}))


if __name__ == "__main__":
    main()
