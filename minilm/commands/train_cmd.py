"""`minilm train`: data -> tokenizer -> model -> training loop -> summary (and a sample for LMs)."""
from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

from ..checkpoint import atomic_write_json
from ..errors import MinilmError
from ..presets import preset
from ..runs import load_trained, perplexity, prepare_text, resolve_checkpoint, unigram_baseline
from ..train import TrainConfig, load_checkpoint, train


def _model_and_task(kind: str, model_options: dict, tokenizer, train_ids, val_ids):
    from ..models import BERTConfig, GPTConfig, LSTMConfig, build_model
    from ..tasks import CausalLMTask, MaskedLMTask
    context = model_options["context"]
    if kind == "gpt":
        config = GPTConfig(vocab_size=tokenizer.vocab_size, **model_options)
        return config, build_model("gpt", asdict(config)), CausalLMTask(train_ids, val_ids, context)
    if kind == "lstm":
        config = LSTMConfig(vocab_size=tokenizer.vocab_size, **model_options)
        return config, build_model("lstm", asdict(config)), CausalLMTask(train_ids, val_ids, context)
    if kind == "bert":
        config = BERTConfig(vocab_size=tokenizer.vocab_size + BERTConfig.NUM_SPECIAL, **model_options)
        task = MaskedLMTask(train_ids, val_ids, context, text_vocab=tokenizer.vocab_size,
                            mask_id=config.mask_id(tokenizer.vocab_size))
        return config, build_model("bert", asdict(config)), task
    raise MinilmError(f"unknown model type {kind!r}")


def run_train(args) -> int:
    chosen = preset(args.model, args.preset)
    model_options = dict(chosen["model"])
    if args.context:
        model_options["context"] = args.context
    if args.model in ("gpt", "bert"):
        model_options["backend"] = args.backend
    train_options = dict(chosen["train"])
    for flag, key in (("steps", "steps"), ("batch", "batch_size"), ("lr", "lr")):
        if getattr(args, flag) is not None:
            train_options[key] = getattr(args, flag)
    config = TrainConfig(**train_options, accumulate=args.accumulate, seed=args.seed,
                         progress=not args.no_progress,
                         max_seconds=args.max_minutes * 60 if args.max_minutes else None)
    out = Path(args.out or f"runs/{args.model}-{args.preset}")
    tokenizer = None
    if args.resume:
        _, _, saved = load_checkpoint(resolve_checkpoint(out))
        from ..data import tokenizer_from_json
        tokenizer = tokenizer_from_json(saved["tokenizer"])
        model_options = {k: v for k, v in saved["model_config"].items() if k in model_options}
    corpus, tokenizer, train_ids, val_ids = prepare_text(args.data, args.tokenizer, args.vocab_size, tokenizer)
    model_config, model, task = _model_and_task(args.model, model_options, tokenizer, train_ids, val_ids)
    baseline = unigram_baseline(train_ids, val_ids, tokenizer.vocab_size)
    print(f"data: {corpus.name}: {len(train_ids):,} training and {len(val_ids):,} validation tokens "
          f"({tokenizer.kind} tokenizer, vocabulary {tokenizer.vocab_size})")
    print(f"model: {args.model} {args.preset}: {model.num_parameters():,} parameters; unigram baseline "
          f"{baseline:.3f} nats/token")
    metadata = {"model_type": args.model, "model_config": asdict(model_config), "tokenizer": tokenizer.to_json(),
                "data": corpus.name, "preset": args.preset}
    started = time.perf_counter()
    result = train(model, task, config, out, metadata=metadata, resume=args.resume)
    minutes = (time.perf_counter() - started) / 60
    summary = {"model": args.model, "preset": args.preset, "steps": result.steps, "minutes": round(minutes, 2),
               "train_loss": result.train_loss, "val_loss": result.val["loss"],
               "val_perplexity": perplexity(result.val["loss"]), "unigram_baseline": baseline,
               "tokens_per_second": round(result.tokens_per_second), "parameters": model.num_parameters(),
               "out": str(out)}
    atomic_write_json(out / "summary.json", summary)
    print(f"done in {minutes:.1f} min: validation loss {result.val['loss']:.3f} nats/token "
          f"(perplexity {summary['val_perplexity']:.2f}) vs unigram baseline {baseline:.3f}; "
          f"{summary['tokens_per_second']} tokens/s")
    print(f"wrote {out}/checkpoint.safetensors, log.json, loss.png, summary.json")
    if args.model in ("gpt", "lstm"):
        model, tokenizer, _ = load_trained(out)
        from ..generate import generate_text
        prompt = "The " if all(c in getattr(tokenizer, "index", {c: 0 for c in "The "}) for c in "The ") \
            else tokenizer.decode(train_ids[:4])
        print(f"sample (prompt {prompt!r}):", repr(prompt + generate_text(model, tokenizer, prompt, max_new_tokens=200,
                                                                           temperature=0.8, seed=0)))
    return 0
