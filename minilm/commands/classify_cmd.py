"""`minilm finetune-classifier`: fine-tune a pre-trained BERT encoder (masked-LM, `minilm train
--model bert`) to tell which of two documents of the corpus a passage comes from.

Passages are non-overlapping windows of `--passage` characters, prefixed with [CLS]; the first 80%
of each document gives the training passages, the last 20% the held-out ones. The report compares
held-out accuracy with the majority-class baseline and, with --compare-scratch, with the same
classifier trained from random weights.
"""
from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from ..checkpoint import atomic_write_json
from ..errors import MinilmError
from ..runs import load_trained
from ..tasks import ClassificationTask
from ..train import TrainConfig, train


def passages_from_documents(names: list[str], tokenizer, length: int, cls_id: int, train_fraction: float = 0.8):
    """(train_x, train_y, val_x, val_y): [CLS] + `length` token ids per passage, label = document index."""
    from pydoc_data.topics import topics
    missing = [n for n in names if n not in topics]
    if missing:
        raise MinilmError(f"unknown document(s) {missing}; pick from pydoc_data.topics, e.g. "
                          f"{sorted(topics, key=lambda k: -len(topics[k]))[:8]}")
    parts = {"train": ([], []), "val": ([], [])}
    for label, name in enumerate(names):
        ids = tokenizer.encode(topics[name])
        cut = int(len(ids) * train_fraction)
        for split, chunk in (("train", ids[:cut]), ("val", ids[cut:])):
            count = len(chunk) // length
            windows = chunk[: count * length].reshape(count, length)
            parts[split][0].append(np.concatenate([np.full((count, 1), cls_id), windows], axis=1))
            parts[split][1].append(np.full(count, label))
    out = []
    for split in ("train", "val"):
        out += [np.concatenate(parts[split][0]), np.concatenate(parts[split][1])]
    return tuple(out)


def run_classifier(args) -> int:
    base, tokenizer, metadata = load_trained(args.base)
    if metadata["model_type"] != "bert":
        raise MinilmError(f"finetune-classifier needs a BERT checkpoint (minilm train --model bert); "
                          f"{args.base} holds a {metadata['model_type']!r} model")
    from ..models import BERT
    config = replace(base.config, num_classes=len(args.docs), pooling="first")
    text_vocab = tokenizer.vocab_size
    if args.passage + 1 > config.context:
        raise MinilmError(f"--passage {args.passage} + [CLS] exceeds the encoder's context of {config.context}")
    data = passages_from_documents(args.docs, tokenizer, args.passage, config.cls_id(text_vocab))
    task = ClassificationTask(*data, num_classes=len(args.docs))
    print(f"documents {args.docs}: {len(data[0])} training and {len(data[2])} held-out passages of "
          f"{args.passage} characters")
    results = {}
    runs = [("pretrained", True)] + ([("scratch", False)] if args.compare_scratch else [])
    for name, pretrained in runs:
        model = BERT(config)
        if pretrained:
            report = model.load_state_dict(base.state_dict(), strict=False)
            if report["unexpected"]:
                raise MinilmError(f"unexpected tensors in the base checkpoint: {report['unexpected']}")
        cfg = TrainConfig(steps=args.steps, batch_size=args.batch, lr=args.lr, warmup=max(1, args.steps // 10),
                          eval_every=args.steps, eval_batches=0, save_every=args.steps, seed=args.seed,
                          progress=not args.no_progress)
        result = train(model, task, cfg, Path(args.out) / name,
                       metadata={"model_type": "bert", "model_config": asdict(config),
                                 "tokenizer": tokenizer.to_json(), "documents": args.docs})
        results[name] = result.val
        print(f"{name:>10}: held-out accuracy {result.val['accuracy']:.3f} (majority baseline "
              f"{result.val['majority_baseline']:.3f}), loss {result.val['loss']:.3f}")
    atomic_write_json(Path(args.out) / "classifier_summary.json", {"documents": args.docs, "results": results,
                                                                  "steps": args.steps, "passage": args.passage})
    return 0


