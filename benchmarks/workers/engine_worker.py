"""One side of the engine-overhead benchmark, in its own process: minilm or torch, one workload.

Workloads (identical ops in both libraries, float32):
  chain: 1,000 small ops (500 x (mul, add)) on a (16,) vector, then sum, then backward.
  mlp:   one training step of a 2-layer MLP on 256x256 matrices: x (256,256) @ W1 (256,256) + b1,
         relu, @ W2 + b2, mean squared error, backward, SGD update of W1, b1, W2, b2.
Prints one JSON line: median seconds per iteration and the loss (to check both sides agree).
"""
import argparse
import json
import statistics
import time

import numpy as np


def make_data(seed=0):
    rng = np.random.default_rng(seed)
    return {"x": rng.standard_normal((256, 256)).astype(np.float32),
            "y": rng.standard_normal((256, 256)).astype(np.float32),
            "w1": (rng.standard_normal((256, 256)) / 16).astype(np.float32),
            "w2": (rng.standard_normal((256, 256)) / 16).astype(np.float32),
            "b1": np.zeros(256, np.float32), "b2": np.zeros(256, np.float32),
            "v": rng.standard_normal(16).astype(np.float32)}


def minilm_workloads(data):
    import minilm

    def chain():
        v = minilm.tensor(data["v"], requires_grad=True)
        y = v
        for _ in range(500):
            y = y * 1.0001
            y = y + 0.0001
        loss = y.sum()
        loss.backward()
        return loss.item()

    params = {k: minilm.tensor(data[k].copy(), requires_grad=True) for k in ("w1", "b1", "w2", "b2")}
    x, y = minilm.tensor(data["x"]), minilm.tensor(data["y"])

    def mlp():
        p = params
        hidden = (x @ p["w1"] + p["b1"]).relu()
        diff = hidden @ p["w2"] + p["b2"] - y
        loss = (diff * diff).mean()
        loss.backward()
        for t in p.values():
            t.data -= 0.01 * t.grad
            t.grad = None
        return loss.item()

    return {"chain": chain, "mlp": mlp}


def torch_workloads(data, threads):
    import torch
    torch.set_num_threads(threads)

    def chain():
        v = torch.tensor(data["v"], requires_grad=True)
        y = v
        for _ in range(500):
            y = y * 1.0001
            y = y + 0.0001
        loss = y.sum()
        loss.backward()
        return loss.item()

    params = {k: torch.tensor(data[k].copy(), requires_grad=True) for k in ("w1", "b1", "w2", "b2")}
    x, y = torch.tensor(data["x"]), torch.tensor(data["y"])

    def mlp():
        p = params
        hidden = (x @ p["w1"] + p["b1"]).relu()
        diff = hidden @ p["w2"] + p["b2"] - y
        loss = (diff * diff).mean()
        loss.backward()
        with torch.no_grad():
            for t in p.values():
                t -= 0.01 * t.grad
                t.grad = None
        return loss.item()

    return {"chain": chain, "mlp": mlp}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--lib", choices=["minilm", "torch"], required=True)
    parser.add_argument("--work", choices=["chain", "mlp"], required=True)
    parser.add_argument("--iters", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    data = make_data()
    work = (minilm_workloads(data) if args.lib == "minilm" else torch_workloads(data, args.threads))[args.work]
    first_loss = work()
    for _ in range(3):
        work()
    times = []
    for _ in range(args.iters):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    print(json.dumps({"lib": args.lib, "work": args.work, "seconds": statistics.median(times),
                      "first_loss": first_loss}))


if __name__ == "__main__":
    main()
