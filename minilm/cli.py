"""The `minilm` command (also `python -m minilm`).

    minilm train --preset tiny                 # character GPT on the built-in corpus (~5 min, 2 cores)
    minilm generate runs/gpt-tiny --prompt "The "
    minilm eval runs/gpt-tiny [--data PATH]
    minilm finetune --base runs/gpt-tiny --data python-stdlib --lora r=8,alpha=16,targets=q_proj,v_proj --out runs/code-lora
    minilm embed "A sentence." "Another."       # sentence embeddings (all-MiniLM-L6-v2), cosine matrix
    minilm demo                                # a small expression, backward, gradcheck report
    minilm verify-attention MODULE:FUNCTION    # check your attention kernel against the reference
"""
from __future__ import annotations

import argparse
import json
import sys

from .errors import MinilmError

FMT = argparse.ArgumentDefaultsHelpFormatter


def _cmd_demo(args) -> int:
    from .demo import run_demo
    return 0 if run_demo(seed=args.seed) else 1


def _add_train_args(p):
    p.add_argument("--model", choices=["gpt", "lstm", "bert"], default="gpt", help="model type")
    p.add_argument("--preset", choices=["tiny", "small"], default="tiny", help="size preset")
    p.add_argument("--steps", type=int, help="optimizer steps (default: the preset's)")
    p.add_argument("--batch", type=int, help="sequences per step (default: the preset's)")
    p.add_argument("--accumulate", type=int, default=1, help="micro-batches per step (gradient accumulation)")
    p.add_argument("--lr", type=float, help="peak learning rate (default: the preset's)")
    p.add_argument("--context", type=int, help="tokens per sequence (default: the preset's)")
    p.add_argument("--backend", default="reference", choices=["reference", "numba", "triton", "auto"],
                   help="attention kernels")
    p.add_argument("--data", default=None, help="UTF-8 text file or folder (default: the built-in corpus)")
    p.add_argument("--tokenizer", choices=["char", "bpe"], default="char")
    p.add_argument("--vocab-size", type=int, default=512, help="BPE vocabulary size")
    p.add_argument("--out", default=None, help="output folder (default: runs/MODEL-PRESET)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue the run in --out exactly where it stopped")
    p.add_argument("--max-minutes", type=float, default=None, help="stop (with a checkpoint) after this long")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _cmd_train(args) -> int:
    from .commands.train_cmd import run_train
    return run_train(args)


def _cmd_generate(args) -> int:
    from .commands.generate_cmd import run_generate
    return run_generate(args)


def _cmd_eval(args) -> int:
    from .commands.generate_cmd import run_eval
    return run_eval(args)


def _cmd_finetune(args) -> int:
    from .commands.finetune_cmd import run_finetune
    return run_finetune(args)


def _cmd_embed(args) -> int:
    from .commands.embed_cmd import run_embed
    return run_embed(args)


def _cmd_finetune_classifier(args) -> int:
    from .commands.classify_cmd import run_classifier
    return run_classifier(args)


def _cmd_walk(args) -> int:
    from .tools.walk import walk
    walk(op=args.op)
    return 0


def _cmd_plot_grads(args) -> int:
    from .tools.grad_health import plot_grad_health
    print(f"wrote {plot_grad_health(args.run_dir, args.out)}")
    return 0


def _cmd_attention_map(args) -> int:
    from .runs import load_trained
    from .tools.attention_map import attention_maps, plot_attention_maps
    model, tokenizer, _ = load_trained(args.checkpoint)
    ids = tokenizer.encode(args.prompt)
    maps = attention_maps(model, ids)
    labels = [tokenizer.decode([i]) for i in ids]
    print(f"wrote {plot_attention_maps(maps, labels, args.out)} ({maps.shape[0]} layers x {maps.shape[1]} heads)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="minilm", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("train", help="pre-train a model (GPT, LSTM LM, BERT MLM)", formatter_class=FMT)
    _add_train_args(p)
    p.set_defaults(run=_cmd_train)

    p = sub.add_parser("generate", help="sample text from a trained GPT or LSTM LM", formatter_class=FMT)
    p.add_argument("checkpoint", help="a `minilm train` output folder or its checkpoint.safetensors")
    p.add_argument("--prompt", default="The ", help="text to continue")
    p.add_argument("--max-new-tokens", type=int, default=300)
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--top-k", type=int, default=None)
    p.add_argument("--top-p", type=float, default=None)
    p.add_argument("--greedy", action="store_true", help="always take the most likely token")
    p.add_argument("--stop", default=None, help="stop when this text is produced")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--backend", default=None, help="attention backend (default: as trained)")
    p.add_argument("--adapter", default=None, help="a LoRA adapter folder to apply before generating")
    p.set_defaults(run=_cmd_generate)

    p = sub.add_parser("eval", help="validation loss and perplexity of a checkpoint", formatter_class=FMT)
    p.add_argument("checkpoint")
    p.add_argument("--data", default=None, help="text to evaluate on (its validation split); default: as trained")
    p.add_argument("--batches", type=int, default=50)
    p.set_defaults(run=_cmd_eval)

    p = sub.add_parser("finetune", help="continue a trained LM on new text: LoRA adapter (--lora) or full",
                       formatter_class=FMT)
    p.add_argument("--base", required=True, help="a `minilm train` output folder or its checkpoint.safetensors")
    p.add_argument("--data", required=True, help="UTF-8 text file or folder, or python-stdlib (its held-out tail validates)")
    p.add_argument("--lora", default=None, metavar="SPEC",
                   help="train a LoRA adapter only, e.g. r=8,alpha=16,targets=q_proj,v_proj (targets last; "
                        "also targets=all-linear or targets=re:REGEX); without it: full fine-tuning")
    p.add_argument("--steps", type=int, default=200, help="optimizer steps")
    p.add_argument("--batch", type=int, default=16, help="sequences per step")
    p.add_argument("--lr", type=float, default=None, help="peak learning rate (default: 3e-3 with --lora, 1e-3 full)")
    p.add_argument("--warmup", type=int, default=20, help="linear warm-up steps")
    p.add_argument("--eval-every", type=int, default=25, help="validation every N steps")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-minutes", type=float, default=None, help="stop (with a result) after this long")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run=_cmd_finetune)

    p = sub.add_parser("embed", help="sentence embeddings of a pre-trained BERT; cosine similarities of several",
                       formatter_class=FMT)
    p.add_argument("sentences", nargs="*", help="sentences to embed (quote each one)")
    p.add_argument("--model", default="all-MiniLM-L6-v2", help="a model name known to minilm.hub, or a model folder")
    p.add_argument("--file", default=None, help="also embed each non-empty line of this file ('-': stdin)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--backend", default="reference", choices=["reference", "numba", "triton", "auto"],
                   help="attention kernels")
    p.add_argument("--show", type=int, default=8, help="values of each vector to print")
    p.add_argument("--vectors", action="store_true", help="print vectors even for several sentences")
    p.add_argument("--json", action="store_true", help="print vectors (and cosines) as JSON")
    p.set_defaults(run=_cmd_embed)

    p = sub.add_parser("demo", help="a small expression, backward, and its gradcheck report", formatter_class=FMT)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(run=_cmd_demo)

    p = sub.add_parser("finetune-classifier", help="fine-tune a pre-trained BERT to tell which document a "
                       "passage comes from", formatter_class=FMT)
    p.add_argument("--base", default="runs/bert-tiny", help="a `minilm train --model bert` output folder")
    p.add_argument("--docs", nargs="+", default=["specialnames", "compound"], help="pydoc topics, one per class")
    p.add_argument("--passage", type=int, default=64, help="characters per passage")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--compare-scratch", action="store_true", help="also train the same classifier from scratch")
    p.add_argument("--out", default="runs/bert-classifier")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(run=_cmd_finetune_classifier)

    p = sub.add_parser("walk", help="print a tiny model's backward pass layer by layer, with formulas",
                       formatter_class=FMT)
    p.add_argument("--op", default=None, help="stop at this op (name, or #ROW) and check it numerically")
    p.set_defaults(run=_cmd_walk)

    p = sub.add_parser("plot-grads", help="plot per-layer gradient norms and update/weight ratios of a run",
                       formatter_class=FMT)
    p.add_argument("run_dir", help="a `minilm train` output folder")
    p.add_argument("--out", default=None, help="PNG path (default: RUN_DIR/grad_health.png)")
    p.set_defaults(run=_cmd_plot_grads)

    p = sub.add_parser("attention-map", help="PNG grid (layers x heads) of a GPT's attention for a prompt",
                       formatter_class=FMT)
    p.add_argument("checkpoint")
    p.add_argument("--prompt", default="The function returns")
    p.add_argument("--out", default="attention_map.png")
    p.set_defaults(run=_cmd_attention_map)

    sub.add_parser("verify-attention", add_help=False,
                   help="verify an attention kernel against the float64 reference (see its --help)")
    return parser


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "verify-attention":
        from kernels.testing.cli import main as verify_main
        return verify_main(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except MinilmError as error:
        print(f"minilm {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"minilm {args.command}: interrupted", file=sys.stderr)
        return 130


def print_json(obj) -> None:
    print(json.dumps(obj, indent=2))
