"""`minilm finetune`: continue a trained model on new text, with LoRA (adapter only) or in full.

    minilm finetune --base runs/gpt-tiny --data python-stdlib --lora r=8,alpha=16,targets=q_proj,v_proj \
        --steps 200 --out runs/code-lora-r8          # -> adapter.safetensors + adapter_config.json
    minilm finetune --base runs/gpt-tiny --data python-stdlib --steps 200 --out runs/code-full
    minilm generate runs/gpt-tiny --adapter runs/code-lora-r8 --prompt "def "

The model keeps the base checkpoint's tokenizer (its vocabulary fixes the embedding size). With
the character tokenizer, characters of the new text that the base never saw are replaced by a
fallback character ('?' when the base knows it, else ' ') in both the training and the validation
text; the count is printed. Byte-level BPE knows every text, so nothing is replaced there.

With --lora only the adapter is trained and kept: the training checkpoint (the frozen base, the
adapter and its optimizer state, needed only while training) is removed at the end, and the
folder holds adapter.safetensors, adapter_config.json, log.json, loss.png and summary.json.
Without --lora the folder holds a full checkpoint that `minilm generate` loads like any other.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..checkpoint import atomic_write_json
from ..errors import MinilmError
from ..runs import load_trained, perplexity
from ..train import CHECKPOINT, TrainConfig, load_checkpoint, train

FALLBACK_CHARS = ("?", " ")


def fit_text_to_vocabulary(text: str, tokenizer) -> tuple[str, dict]:
    """Replace characters unknown to a char tokenizer by a fallback: (text, {char: count replaced})."""
    if tokenizer.kind != "char":
        return text, {}
    fallback = next((c for c in FALLBACK_CHARS if c in tokenizer.index), tokenizer.chars[0])
    replaced: dict[str, int] = {}
    for char in set(text):
        if char not in tokenizer.index:
            replaced[char] = text.count(char)
            text = text.replace(char, fallback)
    return text, dict(sorted(replaced.items(), key=lambda kv: -kv[1]))


def prepare_finetune_data(data: str, tokenizer, val_fraction: float = 0.1):
    """(corpus, train_ids, val_ids, replaced) with the base tokenizer; the split is the corpus's
    (the tail of every document validates), so validation text is held out from training."""
    from ..data import load_corpus
    corpus = load_corpus(data)
    train_text, val_text = corpus.split(val_fraction)
    train_text, replaced_train = fit_text_to_vocabulary(train_text, tokenizer)
    val_text, replaced_val = fit_text_to_vocabulary(val_text, tokenizer)
    replaced = {c: replaced_train.get(c, 0) + replaced_val.get(c, 0) for c in {**replaced_train, **replaced_val}}
    return corpus, tokenizer.encode(train_text), tokenizer.encode(val_text), replaced


def gradient_bytes(model, task, batch) -> dict:
    """One forward/backward on `batch`: bytes of gradients stored, split into trainable and frozen
    parameters (frozen ones must hold none); gradients are cleared again afterwards."""
    model.zero_grad()
    task.loss(model, batch).backward()
    stored = sum(p.grad.nbytes for p in model.parameters() if p.grad is not None)
    frozen_with_grad = [n for n, p in model.named_parameters() if not p.requires_grad and p.grad is not None]
    model.zero_grad()
    if frozen_with_grad:
        raise MinilmError(f"frozen parameters received gradients: {frozen_with_grad[:5]}")
    return {"gradient_bytes": stored,
            "gradient_bytes_if_full": sum(p.data.nbytes for p in model.parameters())}


def finetune(base, data: str, out, steps: int = 200, batch_size: int = 16, lr: float | None = None,
             lora: dict | None = None, warmup: int = 20, eval_every: int = 25, eval_batches: int = 16,
             weight_decay: float = 0.1, seed: int = 0, progress: bool = False, max_seconds: float | None = None,
             log=print) -> dict:
    """Fine-tune the model in `base` on `data`; return a summary (also written to OUT/summary.json)."""
    from ..tasks import CausalLMTask
    model, tokenizer, metadata = load_trained(base)
    if metadata["model_type"] not in ("gpt", "lstm"):
        raise MinilmError(f"finetune trains causal language models (GPT, LSTM LM); {base} holds a "
                          f"{metadata['model_type']!r} model")
    corpus, train_ids, val_ids, replaced = prepare_finetune_data(data, tokenizer)
    if replaced:
        shown = ", ".join(f"{c!r} x{n}" for c, n in replaced.items())
        log(f"data: {sum(replaced.values())} character(s) unknown to the base vocabulary replaced by a fallback: {shown}")
    task = CausalLMTask(train_ids, val_ids, metadata["model_config"]["context"])
    log(f"data: {corpus.name}: {len(train_ids):,} training and {len(val_ids):,} validation tokens")
    base_val = task.evaluate(model, eval_batches)
    log(f"base model {base}: validation loss {base_val['loss']:.4f} nats/token on {corpus.name}")

    report = None
    if lora is not None:
        from ..lora import apply_lora
        options = dict(lora)
        options.setdefault("target_modules", ["q_proj", "v_proj"])
        report = apply_lora(model, seed=seed, **options)
        log(str(report).splitlines()[0])
    lr = lr if lr is not None else (3e-3 if lora is not None else 1e-3)
    trainable, total = model.num_parameters(trainable_only=True), model.num_parameters()
    out = Path(out)
    config = TrainConfig(steps=steps, batch_size=batch_size, lr=lr, warmup=min(warmup, max(steps // 5, 1)),
                         weight_decay=weight_decay, eval_every=eval_every, eval_batches=eval_batches,
                         save_every=max(steps, 1), seed=seed, progress=progress, max_seconds=max_seconds)
    run_metadata = dict(metadata)
    run_metadata.update({"data": corpus.name, "finetuned_from": str(base), "method": "lora" if lora else "full",
                         "lora": None if report is None else {k: v for k, v in lora.items()}})
    started = time.perf_counter()
    result = train(model, task, config, out, metadata=run_metadata)
    minutes = (time.perf_counter() - started) / 60

    _, optimizer_state, _ = load_checkpoint(out / CHECKPOINT)
    optimizer_bytes = sum(v.nbytes for k, v in optimizer_state.items() if not k.endswith(".step"))
    memory = gradient_bytes(model, task, task.sample(np.random.default_rng(seed + 1), batch_size))
    step_tokens = batch_size * task.context
    step_seconds = [step_tokens / h["tokens_per_second"] for h in result.history if h.get("tokens_per_second")]
    curve = [{"step": 0, "val_loss": base_val["loss"]}] + \
        [{"step": h["step"], "val_loss": h["val"]["loss"]} for h in result.history if "val" in h]
    summary = {"method": "lora" if lora is not None else "full", "base": str(base), "data": corpus.name,
               "steps": result.steps, "batch_size": batch_size, "lr": lr, "minutes": round(minutes, 2),
               "base_val_loss": base_val["loss"], "val_loss": result.val["loss"],
               "val_perplexity": perplexity(result.val["loss"]), "train_loss": result.train_loss,
               "trainable_parameters": trainable, "total_parameters": total,
               "trainable_percent": 100.0 * trainable / total, "optimizer_state_bytes": optimizer_bytes,
               **memory, "mean_step_seconds": float(np.mean(step_seconds)) if step_seconds else None,
               "median_step_seconds": float(np.median(step_seconds)) if step_seconds else None,
               "replaced_characters": replaced, "val_curve": curve, "out": str(out)}
    if lora is not None:
        from ..lora import save_adapter
        (out / CHECKPOINT).unlink()          # frozen base + adapter + optimizer state: not needed any more
        summary["lora"] = {"r": report.r, "alpha": report.alpha, "targets": report.wrapped,
                           "dropout": options.get("dropout", 0.0), "rslora": options.get("rslora", False)}
        summary["adapter_bytes"] = save_adapter(model, out)
    else:
        summary["checkpoint_bytes"] = (out / CHECKPOINT).stat().st_size
    atomic_write_json(out / "summary.json", summary)
    return summary


def _format_bytes(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1000
    return f"{n} B"


def run_finetune(args) -> int:
    lora = None
    if args.lora is not None:
        from ..lora import parse_lora_spec
        lora = parse_lora_spec(args.lora)
    summary = finetune(args.base, args.data, args.out, steps=args.steps, batch_size=args.batch, lr=args.lr,
                       lora=lora, warmup=args.warmup, eval_every=args.eval_every, seed=args.seed,
                       progress=not args.no_progress,
                       max_seconds=args.max_minutes * 60 if args.max_minutes else None)
    print(f"done in {summary['minutes']:.1f} min ({summary['steps']} steps, {summary['mean_step_seconds']:.3f} s/step): "
          f"validation loss {summary['base_val_loss']:.4f} -> {summary['val_loss']:.4f} nats/token")
    print(f"trainable {summary['trainable_parameters']:,} of {summary['total_parameters']:,} parameters "
          f"({summary['trainable_percent']:.2f}%); optimizer state {_format_bytes(summary['optimizer_state_bytes'])}, "
          f"gradients {_format_bytes(summary['gradient_bytes'])}")
    out = Path(args.out)
    if lora is not None:
        print(f"wrote {out}/adapter.safetensors ({_format_bytes(summary['adapter_bytes'])}), adapter_config.json, "
              f"log.json, loss.png, summary.json")
        print(f"try: minilm generate {args.base} --adapter {out} --prompt 'def '")
    else:
        print(f"wrote {out}/{CHECKPOINT} ({_format_bytes(summary['checkpoint_bytes'])}), log.json, loss.png, summary.json")
    return 0
