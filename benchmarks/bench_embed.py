"""Sentence-embedding throughput of all-MiniLM-L6-v2: minilm (NumPy; attention on the reference and the
Numba backend) vs sentence-transformers on PyTorch CPU.

    python benchmarks/bench_embed.py [--rounds 3] [--repeats 3] [--st-path DIR]

Work: one batch of 32 real sentences (words from CPython's bundled documentation) of exactly 64 tokens
each ([CLS] + 62 + [SEP]), embedded end to end (tokenisation, encoder, mean pooling, L2 normalisation).
Each library runs in its own process with 2 threads (OMP/OPENBLAS/MKL/NUMBA_NUM_THREADS and
torch.set_num_threads), processes alternated A B C A B C; a worker warms up once, then times `repeats`
batches and reports the median. Validate before timing: every worker's embeddings are compared with
the comparison library's (max abs difference printed).

The comparison is sentence-transformers when it imports (put it on the path with --st-path DIR if it
is installed in a separate folder, e.g. `pip install --no-deps --target DIR sentence-transformers
transformers ...`, which leaves the torch build alone); otherwise the same BERT written in plain torch
ops on the same weights, and the results say so.
Results: benchmarks/results/embed.{json,md}.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BATCH, TOKENS = 32, 64
MINILM_VARIANTS = ("reference", "numba")


# ---------------------------------------------------------------------------- the input
def make_sentences(tokenizer, count: int = BATCH, tokens: int = TOKENS) -> list[str]:
    """`count` strings of real words, each exactly `tokens` WordPiece tokens with [CLS] and [SEP]."""
    from pydoc_data.topics import topics
    words = re.findall(r"[A-Za-z]+[.,]?", " ".join(topics[name] for name in sorted(topics)))
    sentences, start = [], 0
    while len(sentences) < count:
        chosen = []
        while True:
            candidate = chosen + [words[start]]
            start += 1
            length = len(tokenizer.encode(" ".join(candidate)))
            if length > tokens:
                break                                   # this word would overshoot: start again after it
            chosen = candidate
            if length == tokens:
                sentences.append(" ".join(chosen))
                break
    return sentences


# ---------------------------------------------------------------------------- workers (one per process)
def torch_embed_factory(model_dir: Path):
    """The same BERT (Hugging Face BertModel forward, eval) in plain torch ops on the checkpoint's tensors."""
    import numpy as np
    import torch
    import torch.nn.functional as TF
    from safetensors.torch import load_file

    from minilm.data.wordpiece import WordPieceTokenizer
    config = json.loads((model_dir / "config.json").read_text())
    w = load_file(str(model_dir / "model.safetensors"))
    heads, eps = config["num_attention_heads"], config["layer_norm_eps"]
    tokenizer = WordPieceTokenizer.from_pretrained(model_dir)

    def dense(x, name):
        return TF.linear(x, w[f"{name}.weight"], w[f"{name}.bias"])

    def norm(x, name):
        return TF.layer_norm(x, x.shape[-1:], w[f"{name}.weight"], w[f"{name}.bias"], eps)

    def embed(sentences):
        ids, mask, types = (torch.from_numpy(a) for a in tokenizer.encode_batch(sentences, max_length=256))
        batch, length = ids.shape
        with torch.inference_mode():
            x = norm(w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:length]
                     + w["embeddings.token_type_embeddings.weight"][types], "embeddings.LayerNorm")
            keep_keys = mask[:, None, None, :].bool()
            for i in range(config["num_hidden_layers"]):
                p = f"encoder.layer.{i}"
                q, k, v = (dense(x, f"{p}.attention.self.{n}").view(batch, length, heads, -1).transpose(1, 2)
                           for n in ("query", "key", "value"))
                context = TF.scaled_dot_product_attention(q, k, v, attn_mask=keep_keys)
                context = context.transpose(1, 2).reshape(batch, length, -1)
                x = norm(x + dense(context, f"{p}.attention.output.dense"), f"{p}.attention.output.LayerNorm")
                x = norm(x + dense(TF.gelu(dense(x, f"{p}.intermediate.dense")), f"{p}.output.dense"),
                         f"{p}.output.LayerNorm")
            keep = mask[:, :, None].float()
            pooled = (x * keep).sum(1) / keep.sum(1).clamp(min=1e-9)
            return np.asarray(TF.normalize(pooled, dim=-1))
    return embed


def worker(variant: str, sentences_file: str, out_file: str, repeats: int, threads: int) -> dict:
    import numpy as np
    sentences = json.loads(Path(sentences_file).read_text())
    started = time.perf_counter()
    from minilm import hub
    model_dir = hub.find("all-MiniLM-L6-v2")
    if variant in MINILM_VARIANTS:
        from minilm.embed import load
        encoder = load("all-MiniLM-L6-v2", backend=variant)
        embed = lambda batch: encoder.encode(batch, batch_size=BATCH)                  # noqa: E731
        library = f"minilm (numpy {np.__version__}, attention backend {variant})"
    else:
        import torch
        torch.set_num_threads(threads)
        if variant == "sentence-transformers":
            import sentence_transformers
            from sentence_transformers import SentenceTransformer
            model = SentenceTransformer(str(model_dir), device="cpu")
            embed = lambda batch: model.encode(batch, batch_size=BATCH, convert_to_numpy=True)  # noqa: E731
            library = f"sentence-transformers {sentence_transformers.__version__}, torch {torch.__version__}"
        else:
            embed = torch_embed_factory(model_dir)
            library = f"plain torch ops (same BERT, same weights), torch {torch.__version__}"
    load_seconds = time.perf_counter() - started
    vectors = embed(sentences)                                                          # warm-up (and JIT)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        vectors = embed(sentences)
        times.append(time.perf_counter() - start)
    np.save(out_file, np.asarray(vectors, dtype=np.float32))
    seconds = statistics.median(times)
    return {"variant": variant, "library": library, "seconds": seconds, "times": times,
            "sentences_per_second": len(sentences) / seconds, "load_seconds": load_seconds}


# ---------------------------------------------------------------------------- driver
def comparison_variant(st_path: str | None) -> str:
    code = "import sentence_transformers"
    env = dict(os.environ)
    if st_path:
        env["PYTHONPATH"] = st_path + os.pathsep + env.get("PYTHONPATH", "")
    found = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True).returncode == 0
    return "sentence-transformers" if found else "torch"


def run_one(variant, sentences_file, out_file, repeats, threads, st_path) -> dict:
    from benchmarks.harness import thread_env
    env = thread_env(threads)
    if st_path and variant == "sentence-transformers":
        env["PYTHONPATH"] = env["PYTHONPATH"] + os.pathsep + st_path          # after the repo: never shadow it
    cmd = [sys.executable, __file__, "--worker", variant, "--sentences", sentences_file, "--out", out_file,
           "--repeats", str(repeats), "--threads", str(threads)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{variant} worker failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3, help="timed batches per worker (median)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--st-path", default=None, help="a folder holding sentence-transformers (prepended to "
                                                          "its worker's path only)")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--sentences", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.sentences, args.out, args.repeats, args.threads)))
        return 0

    import numpy as np

    from benchmarks.harness import machine_info, write_results
    from minilm import hub
    from minilm.data.wordpiece import WordPieceTokenizer
    tokenizer = WordPieceTokenizer.from_pretrained(hub.find("all-MiniLM-L6-v2"))
    sentences = make_sentences(tokenizer)
    assert all(len(tokenizer.encode(s)) == TOKENS for s in sentences)
    other = comparison_variant(args.st_path)
    variants = [*MINILM_VARIANTS, other]
    results = {v: [] for v in variants}
    errors = {}
    with tempfile.TemporaryDirectory() as scratch:
        sentences_file = str(Path(scratch) / "sentences.json")
        Path(sentences_file).write_text(json.dumps(sentences))
        for round_index in range(args.rounds):
            for variant in variants:
                out_file = str(Path(scratch) / f"{variant}.npy")
                result = run_one(variant, sentences_file, out_file, args.repeats, args.threads, args.st_path)
                results[variant].append(result)
                print(f"round {round_index + 1} {variant:>22}: {result['sentences_per_second']:8.1f} sentences/s "
                      f"({result['seconds'] * 1e3:.0f} ms per batch)", flush=True)
        reference_vectors = np.load(str(Path(scratch) / f"{other}.npy"))
        for variant in MINILM_VARIANTS:
            errors[variant] = float(np.abs(np.load(str(Path(scratch) / f"{variant}.npy")) - reference_vectors).max())

    summary = {}
    for variant in variants:
        rates = [r["sentences_per_second"] for r in results[variant]]
        summary[variant] = {"library": results[variant][0]["library"],
                            "sentences_per_second_median": statistics.median(rates), "per_round": rates}
    for variant in MINILM_VARIANTS:
        # per round: minilm time / comparison time (> 1: minilm is slower); the median over rounds
        ratios = [m["seconds"] / o["seconds"] for m, o in zip(results[variant], results[other])]
        summary[variant]["time_ratio_vs_" + other] = statistics.median(ratios)
        summary[variant]["max_abs_diff_vs_" + other] = errors[variant]
    payload = {"machine": machine_info(args.threads), "batch": BATCH, "tokens": TOKENS, "rounds": args.rounds,
               "repeats": args.repeats, "comparison": other, "results": summary, "raw": results}
    info = payload["machine"]
    other_label = summary[other]["library"]
    note = "" if other == "sentence-transformers" else (
        "\n**sentence-transformers was not importable here**, so the comparison is the same BERT written in plain "
        "torch ops on the same weights (torch SDPA attention).\n")
    rows = "\n".join(
        f"| {v} | {summary[v]['library']} | {summary[v]['sentences_per_second_median']:.1f} | "
        + (f"{summary[v]['time_ratio_vs_' + other]:.2f}x | {summary[v]['max_abs_diff_vs_' + other]:.1e} |"
           if v in MINILM_VARIANTS else "1.00x | - |") for v in variants)
    markdown = f"""# Sentence embeddings: all-MiniLM-L6-v2 throughput, minilm vs {other}

Machine: {info['cpu']}, {info['logical_cores']} logical cores, {args.threads} threads per library; Python
{info['python']}, numpy {info['numpy']}, torch {info['torch']}, numba {info['numba']}.
Work: a batch of {BATCH} real-word sentences of exactly {TOKENS} tokens, embedded end to end (tokenise, encode,
mean-pool, normalise). Each library in its own process, alternated, {args.rounds} rounds x {args.repeats} timed
batches (median); ratio = median over rounds of minilm time / {other} time (lower is better).
Comparison: {other_label}.{note}

| variant | library | sentences/s | time ratio | max abs diff vs {other} |
|---|---|---|---|---|
{rows}

The machine is shared (other jobs ran at the same time): absolute rates are noisy; the alternation keeps the
ratio fair. minilm's matmuls are numpy's (OpenBLAS sgemm); the numba backend replaces only attention, which is
a small share of the work at 64 tokens.
"""
    print()
    print(markdown)
    if not args.no_write:
        write_results("embed", payload, markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
