"""`minilm embed`: sentence embeddings of a pre-trained BERT (all-MiniLM-L6-v2 by default).

    minilm embed "The quick brown fox jumps over the lazy dog."       # the vector's first values
    minilm embed "A man is eating." "A man is playing a guitar." ...  # the cosine-similarity matrix
"""
from __future__ import annotations

import json
import sys

import numpy as np

from ..errors import MinilmError



def format_vectors(sentences, vectors, show: int) -> str:
    lines = []
    for sentence, vector in zip(sentences, vectors):
        head = ", ".join(f"{v:.8f}" for v in vector[:show])
        more = ", ..." if show < len(vector) else ""
        lines.append(f"{sentence}\n  ({len(vector)} values, norm {np.linalg.norm(vector):.6f}) [{head}{more}]")
    return "\n".join(lines)


def format_similarities(sentences, similarities, width: int = 40) -> str:
    labels = [f"[{i}]" for i in range(len(sentences))]
    lines = [f"{label} {sentence}" for label, sentence in zip(labels, sentences)]
    lines.append("")
    lines.append("cosine similarity")
    lines.append(" " * 6 + "".join(f"{label:>9}" for label in labels))
    for label, row in zip(labels, similarities):
        lines.append(f"{label:>6}" + "".join(f"{value:9.4f}" for value in row))
    return "\n".join(lines)


def run_embed(args) -> int:
    sentences = list(args.sentences)
    if args.file:
        source = sys.stdin if args.file == "-" else open(args.file, encoding="utf-8")
        with source:
            sentences += [line.rstrip("\n") for line in source if line.strip()]
    if not sentences:
        raise MinilmError("embed: give one or more sentences (or --file PATH, one sentence a line)")
    from ..embed import cosine_matrix, load
    encoder = load(args.model, backend=args.backend)
    vectors = encoder.encode(sentences, batch_size=args.batch_size)
    if args.json:
        payload = {"model": args.model, "sentences": sentences, "vectors": vectors.tolist()}
        if len(sentences) > 1:
            payload["cosine"] = cosine_matrix(vectors).tolist()
        print(json.dumps(payload))
    elif len(sentences) == 1 or args.vectors:
        print(format_vectors(sentences, vectors, args.show))
    else:
        print(format_similarities(sentences, cosine_matrix(vectors)))
    return 0
