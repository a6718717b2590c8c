"""One side of the GPT training-throughput benchmark, in its own process: minilm or torch.

The same model on both sides (token + learned position embeddings, pre-LN blocks with causal
multi-head attention and a GELU MLP, final LayerNorm, head tied to the token embedding), the same
AdamW step, float32. Prints one JSON line: median seconds per step, tokens/s, the first loss.
"""
import argparse
import json
import math
import statistics
import time

import numpy as np


def batches(vocab, batch, context, count, seed=0):
    rng = np.random.default_rng(seed)
    data = rng.integers(0, vocab, size=200_000)
    for _ in range(count):
        starts = rng.integers(0, len(data) - context - 1, size=batch)
        x = np.stack([data[s:s + context] for s in starts])
        y = np.stack([data[s + 1:s + context + 1] for s in starts])
        yield x, y


def minilm_step_fn(args):
    import minilm.functional as F
    from minilm.models import GPT, GPTConfig
    from minilm.optim import AdamW
    model = GPT(GPTConfig(vocab_size=args.vocab, context=args.context, d_model=args.d_model, n_heads=args.heads,
                          n_layers=args.layers, backend=args.backend))
    opt = AdamW(model.parameters(), lr=1e-3, weight_decay=0.0)

    def step(x, y):
        logits = model(x)
        loss = F.cross_entropy(logits.reshape(-1, args.vocab), y.reshape(-1))
        loss.backward()
        opt.step()
        opt.zero_grad()
        return loss.item()
    return step


def torch_step_fn(args):
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    d, h = args.d_model, args.heads

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
            self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))
            self.fc1, self.fc2 = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

        def forward(self, x):
            b, t, _ = x.shape
            a = self.ln1(x)
            split = lambda z: z.view(b, t, h, d // h).transpose(1, 2)  # noqa: E731
            att = F.scaled_dot_product_attention(split(self.q(a)), split(self.k(a)), split(self.v(a)), is_causal=True)
            x = x + self.o(att.transpose(1, 2).reshape(b, t, d))
            return x + self.fc2(F.gelu(self.fc1(self.ln2(x))))

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.tok, self.pos = nn.Embedding(args.vocab, d), nn.Embedding(args.context, d)
            self.blocks = nn.ModuleList(Block() for _ in range(args.layers))
            self.ln = nn.LayerNorm(d)

        def forward(self, ids):
            x = self.tok(ids) + self.pos(torch.arange(ids.shape[1]))
            for block in self.blocks:
                x = block(x)
            return self.ln(x) @ self.tok.weight.T

    model = GPT()
    for p in model.parameters():
        if p.ndim >= 2:
            nn.init.normal_(p, std=0.02)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0)

    def step(x, y):
        logits = model(torch.from_numpy(x))
        loss = F.cross_entropy(logits.reshape(-1, args.vocab), torch.from_numpy(y).reshape(-1))
        loss.backward()
        opt.step()
        opt.zero_grad()
        return loss.item()
    return step


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--lib", choices=["minilm", "torch"], required=True)
    p.add_argument("--backend", default="reference")
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--vocab", type=int, default=96)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--context", type=int, default=128)
    p.add_argument("--d-model", type=int, default=256)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    step = minilm_step_fn(args) if args.lib == "minilm" else torch_step_fn(args)
    data = list(batches(args.vocab, args.batch, args.context, args.steps + 2))
    first = step(*data[0])
    step(*data[1])                                                   # warm-up (numba compiles here)
    times = []
    for x, y in data[2:]:
        start = time.perf_counter()
        step(x, y)
        times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    print(json.dumps({"lib": args.lib, "backend": args.backend, "seconds": seconds,
                      "tokens_per_second": args.batch * args.context / seconds, "first_loss": first,
                      "expected_first_loss": math.log(args.vocab)}))


if __name__ == "__main__":
    main()
