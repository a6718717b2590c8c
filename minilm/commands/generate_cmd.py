"""`minilm generate` and `minilm eval`."""
from __future__ import annotations

from ..errors import MinilmError
from ..runs import load_trained, perplexity, prepare_text, unigram_baseline


def run_generate(args) -> int:
    model, tokenizer, metadata = load_trained(args.checkpoint, backend=args.backend)
    if metadata["model_type"] not in ("gpt", "lstm"):
        raise MinilmError(f"generate needs a GPT or LSTM LM checkpoint; {args.checkpoint} holds a "
                          f"{metadata['model_type']!r} model")
    if args.adapter:
        from ..lora import load_adapter
        load_adapter(model, args.adapter)
    from ..generate import generate_text
    text = generate_text(model, tokenizer, args.prompt, max_new_tokens=args.max_new_tokens,
                         temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                         greedy=args.greedy, stop=args.stop, seed=args.seed)
    print(args.prompt + text)
    return 0


def run_eval(args) -> int:
    model, tokenizer, metadata = load_trained(args.checkpoint)
    from ..tasks import CausalLMTask, MaskedLMTask
    if metadata.get("finetuned_from"):       # `minilm finetune` output: unknown chars -> fallback, as in training
        from .finetune_cmd import prepare_finetune_data
        _, train_ids, val_ids, _ = prepare_finetune_data(args.data or metadata.get("data"), tokenizer)
    else:
        _, _, train_ids, val_ids = prepare_text(args.data or metadata.get("data"), tokenizer.kind, 0, tokenizer)
    context = metadata["model_config"]["context"]
    if metadata["model_type"] == "bert":
        task = MaskedLMTask(train_ids, val_ids, context, tokenizer.vocab_size, model.config.mask_id(tokenizer.vocab_size))
    else:
        task = CausalLMTask(train_ids, val_ids, context)
    result = task.evaluate(model, args.batches)
    baseline = unigram_baseline(train_ids, val_ids, tokenizer.vocab_size)
    print(f"validation loss {result['loss']:.4f} nats/token, perplexity {perplexity(result['loss']):.3f} "
          f"({result['tokens']:,} tokens); unigram baseline {baseline:.4f}")
    return 0
