"""The training loop: pre-training (causal LM, masked LM) and fine-tuning (classification).

    result = train(model, task, TrainConfig(steps=2000), out_dir="runs/tiny")

Per step: `accumulate` micro-batches -> mean loss -> backward -> clip_grad_norm -> AdamW -> schedule.
Every `eval_every` steps: validation loss (and perplexity / accuracy) on fixed batches. Logs go to
`log.json` (loss, lr, grad norm, tokens/s, per-layer gradient norm and update/weight ratio), the
loss curve to `loss.png`, and everything needed to resume exactly to one safetensors file
`checkpoint.safetensors`, written atomically (a killed save leaves the previous one loadable).
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .checkpoint import atomic_write_json, load_tensors, save_tensors
from .errors import MinilmError, NonFiniteError
from .optim import AdamW, WarmupCosine, clip_grad_norm

CHECKPOINT = "checkpoint.safetensors"


@dataclass
class TrainConfig:
    steps: int = 1000
    batch_size: int = 16
    lr: float = 3e-3
    min_lr_ratio: float = 0.1
    warmup: int = 50
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    accumulate: int = 1
    eval_every: int = 200
    eval_batches: int = 16
    save_every: int = 200
    log_every: int = 10
    seed: int = 0
    progress: bool = True
    max_seconds: float | None = None      # stop early (after a checkpoint) when the time is up


@dataclass
class TrainResult:
    steps: int
    train_loss: float
    val: dict
    seconds: float
    tokens_per_second: float
    history: list = field(default_factory=list)


def parameter_groups(model, weight_decay: float):
    """Decay matrices (weights, embeddings); never biases or LayerNorm parameters (1-D)."""
    decay, no_decay = [], []
    for _, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (decay if p.ndim >= 2 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return [g for g in groups if g["params"]]


def layer_health(model, before: dict) -> dict:
    """Per-parameter gradient norm and update/weight ratio |dW| / |W| of the last step."""
    health = {}
    for name, p in model.named_parameters():
        if not p.requires_grad or p.grad is None:
            continue
        weight_norm = float(np.linalg.norm(p.data))
        update = float(np.linalg.norm(p.data - before[name])) if name in before else 0.0
        health[name] = {"grad_norm": float(np.linalg.norm(p.grad)),
                        "update_ratio": update / weight_norm if weight_norm else 0.0}
    return health


def _progress(total: int, initial: int, enabled: bool):
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, initial=initial, dynamic_ncols=True, leave=True)


def save_training_state(path: Path, model, optimizer, scheduler, rng, step: int, history: list,
                        extra_metadata: dict) -> int:
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    opt_state = optimizer.state_dict()
    tensors.update({f"optim.{k}": v for k, v in opt_state["state"].items()})
    metadata = dict(extra_metadata)
    metadata.update({"step": step, "history": history, "rng": rng.bit_generator.state,
                     "model_rng": model.rng_state() if hasattr(model, "rng_state") else None,
                     "optimizer": {"step_count": opt_state["step_count"], "lrs": opt_state["lrs"]},
                     "scheduler": scheduler.state_dict()})
    return save_tensors(path, tensors, metadata)


def load_checkpoint(path) -> tuple[dict, dict, dict]:
    """(model tensors, optimizer tensors, metadata) from a training checkpoint."""
    tensors, metadata = load_tensors(path)
    model = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    optim = {k[len("optim."):]: v for k, v in tensors.items() if k.startswith("optim.")}
    return model, optim, metadata


def train(model, task, config: TrainConfig, out_dir, metadata: dict | None = None, resume: bool = False) -> TrainResult:
    """Train `model` on `task`; write log.json, loss.png and checkpoint.safetensors into out_dir."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    metadata = dict(metadata or {})
    metadata["train_config"] = asdict(config)
    optimizer = AdamW(parameter_groups(model, config.weight_decay), lr=config.lr)
    scheduler = WarmupCosine(optimizer, config.warmup, config.steps, config.min_lr_ratio)
    rng = np.random.default_rng(config.seed)
    history, start_step = [], 0
    if resume:
        ckpt = out / CHECKPOINT
        if not ckpt.is_file():
            raise MinilmError(f"--resume: no checkpoint at {ckpt}")
        model_state, optim_state, saved = load_checkpoint(ckpt)
        model.load_state_dict(model_state)
        optimizer.load_state_dict({"state": optim_state, **saved["optimizer"]})
        scheduler.load_state_dict(saved["scheduler"])
        rng.bit_generator.state = saved["rng"]
        if saved.get("model_rng") is not None and hasattr(model, "set_rng_state"):
            model.set_rng_state(saved["model_rng"])
        history, start_step = saved["history"], int(saved["step"])
    model.train()
    bar = _progress(config.steps, start_step, config.progress)
    started = time.perf_counter()
    tokens_seen, last_loss, val = 0, float("nan"), {}
    step = start_step
    try:
        while step < config.steps:
            snapshot = {n: p.data.copy() for n, p in model.named_parameters()} \
                if (step + 1) % config.log_every == 0 else None
            step_start = time.perf_counter()
            total_loss, step_tokens = 0.0, 0
            for _ in range(config.accumulate):
                batch = task.sample(rng, config.batch_size)
                loss = task.loss(model, batch)
                if not math.isfinite(loss.item()):
                    raise NonFiniteError(f"training loss is {loss.item()} at step {step + 1}; lower --lr, "
                                         "or run with minilm.detect_anomaly() to find the op")
                (loss * (1.0 / config.accumulate)).backward()
                total_loss += loss.item() / config.accumulate
                step_tokens += task.tokens(batch)
            grad_norm = clip_grad_norm(model.parameters(), config.grad_clip) if config.grad_clip else float("nan")
            optimizer.step()
            lr = optimizer.param_groups[0]["lr"]
            scheduler.step()
            step += 1
            elapsed = time.perf_counter() - step_start
            tokens_seen += step_tokens
            last_loss = total_loss
            entry = {"step": step, "loss": total_loss, "lr": lr, "grad_norm": grad_norm,
                     "tokens_per_second": step_tokens / elapsed if elapsed > 0 else None}
            if snapshot is not None:
                entry["layers"] = layer_health(model, snapshot)
            optimizer.zero_grad()
            if step % config.eval_every == 0 or step == config.steps:
                val = task.evaluate(model, config.eval_batches)
                model.train()
                entry["val"] = val
            history.append(entry)
            if bar is not None:
                bar.update(1)
                shown = {"loss": f"{total_loss:.3f}", "tok/s": f"{entry['tokens_per_second'] or 0:.0f}"}
                if "val" in entry:
                    shown["val"] = f"{val['loss']:.3f}"
                bar.set_postfix(shown)
            out_of_time = config.max_seconds is not None and time.perf_counter() - started > config.max_seconds
            if step % config.save_every == 0 or step == config.steps or out_of_time:
                save_training_state(out / CHECKPOINT, model, optimizer, scheduler, rng, step, history, metadata)
                write_log(out, history, metadata)
            if out_of_time:
                break
    finally:
        if bar is not None:
            bar.close()
    seconds = time.perf_counter() - started
    if not val:
        val = task.evaluate(model, config.eval_batches)
    write_log(out, history, metadata)
    plot_losses(history, out / "loss.png")
    return TrainResult(step, last_loss, val, seconds, tokens_seen / seconds if seconds else 0.0, history)


def write_log(out: Path, history: list, metadata: dict) -> None:
    atomic_write_json(out / "log.json", {"metadata": metadata, "history": history})


def plot_losses(history: list, path: Path, title: str = "") -> Path | None:
    """Training loss per step and validation loss at each evaluation, as a PNG."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    steps = [h["step"] for h in history]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(steps, [h["loss"] for h in history], lw=0.8, alpha=0.7, label="train loss")
    evals = [(h["step"], h["val"]["loss"]) for h in history if "val" in h]
    if evals:
        ax.plot(*zip(*evals), "o-", label="validation loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats per token)")
    ax.set_title(title or "training")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def read_log(run_dir) -> dict:
    path = Path(run_dir) / "log.json"
    if not path.is_file():
        raise MinilmError(f"no log.json in {run_dir} (is it a `minilm train` output folder?)")
    return json.loads(path.read_text())
