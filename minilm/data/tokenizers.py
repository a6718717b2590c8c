"""Tokenizers: characters, and byte-level BPE trained from a corpus. Both save/load as JSON.

Byte-level BPE (GPT-2 style): text -> UTF-8 bytes (256 base tokens, so no text is ever unknown);
training repeatedly merges the most frequent adjacent pair within words (a word = optional
leading space + letters, digits, or other symbols), until the vocabulary has `vocab_size` tokens.
"""
from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from ..errors import MinilmError

_WORDS = re.compile(r" ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+|\s+(?!\S)|\s+")


def _atomic_write_text(path: Path, text: str) -> None:
    from ..checkpoint import atomic_write_bytes
    atomic_write_bytes(Path(path), text.encode("utf-8"))


class CharTokenizer:
    kind = "char"

    def __init__(self, chars: list[str]):
        self.chars = list(chars)
        self.index = {c: i for i, c in enumerate(self.chars)}

    @classmethod
    def train(cls, text: str) -> "CharTokenizer":
        if not text:
            raise MinilmError("CharTokenizer.train: the text is empty")
        return cls(sorted(set(text)))

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> np.ndarray:
        unknown = sorted({c for c in text if c not in self.index})
        if unknown:
            raise MinilmError(f"tokenizer: {len(unknown)} character(s) not in the vocabulary: "
                              f"{''.join(unknown)!r} (the character tokenizer knows only the training text's characters)")
        return np.fromiter((self.index[c] for c in text), dtype=np.int64, count=len(text))

    def decode(self, ids) -> str:
        return "".join(self.chars[int(i)] for i in ids)

    def to_json(self) -> dict:
        return {"kind": self.kind, "chars": self.chars}

    def save(self, path) -> None:
        _atomic_write_text(Path(path), json.dumps(self.to_json(), ensure_ascii=False))


class BPETokenizer:
    kind = "bpe"

    def __init__(self, merges: list[tuple[int, int]]):
        self.merges = [tuple(m) for m in merges]
        self.ranks = {pair: rank for rank, pair in enumerate(self.merges)}
        self.vocab = {i: bytes([i]) for i in range(256)}
        for rank, (a, b) in enumerate(self.merges):
            self.vocab[256 + rank] = self.vocab[a] + self.vocab[b]
        self._cache: dict[str, list[int]] = {}

    @property
    def vocab_size(self) -> int:
        return 256 + len(self.merges)

    @classmethod
    def train(cls, text: str, vocab_size: int = 512) -> "BPETokenizer":
        if vocab_size < 256:
            raise MinilmError(f"BPETokenizer.train: vocab_size must be >= 256 (the byte alphabet); got {vocab_size}")
        if not text:
            raise MinilmError("BPETokenizer.train: the text is empty")
        word_counts = Counter(_WORDS.findall(text))
        words = [list(w.encode("utf-8")) for w in word_counts]
        counts = list(word_counts.values())
        pair_counts: Counter = Counter()
        where = defaultdict(set)                 # pair -> ids of words that contain it
        for wid, symbols in enumerate(words):
            for pair in zip(symbols, symbols[1:]):
                pair_counts[pair] += counts[wid]
                where[pair].add(wid)
        merges = []
        while len(merges) < vocab_size - 256 and pair_counts:
            best = max(pair_counts.items(), key=lambda kv: (kv[1], -kv[0][0], -kv[0][1]))[0]
            if pair_counts[best] < 2:
                break
            new_id = 256 + len(merges)
            merges.append(best)
            for wid in list(where.pop(best, ())):
                symbols, count = words[wid], counts[wid]
                for pair in zip(symbols, symbols[1:]):            # remove this word's old pairs
                    pair_counts[pair] -= count
                    if pair_counts[pair] <= 0:
                        del pair_counts[pair]
                merged, i = [], 0
                while i < len(symbols):
                    if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == best:
                        merged.append(new_id)
                        i += 2
                    else:
                        merged.append(symbols[i])
                        i += 1
                words[wid] = merged
                for pair in zip(merged, merged[1:]):              # add its new pairs
                    pair_counts[pair] += count
                    where[pair].add(wid)
        return cls(merges)

    def _encode_word(self, word: str) -> list[int]:
        cached = self._cache.get(word)
        if cached is not None:
            return cached
        symbols = list(word.encode("utf-8"))
        while len(symbols) > 1:
            ranked = [(self.ranks.get(p, 1 << 30), i) for i, p in enumerate(zip(symbols, symbols[1:]))]
            rank, i = min(ranked)
            if rank == 1 << 30:
                break
            symbols[i:i + 2] = [256 + rank]
        if len(self._cache) < 200_000:
            self._cache[word] = symbols
        return symbols

    def encode(self, text: str) -> np.ndarray:
        ids = []
        for word in _WORDS.findall(text):
            ids.extend(self._encode_word(word))
        return np.array(ids, dtype=np.int64)

    def decode(self, ids) -> str:
        return b"".join(self.vocab[int(i)] for i in ids).decode("utf-8", errors="replace")

    def to_json(self) -> dict:
        return {"kind": self.kind, "merges": [list(m) for m in self.merges]}

    def save(self, path) -> None:
        _atomic_write_text(Path(path), json.dumps(self.to_json()))


def tokenizer_from_json(data: dict):
    if data.get("kind") == "char":
        return CharTokenizer(data["chars"])
    if data.get("kind") == "bpe":
        return BPETokenizer(data["merges"])
    raise MinilmError(f"tokenizer file: unknown kind {data.get('kind')!r} (expected 'char' or 'bpe')")


def load_tokenizer(path):
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise MinilmError(f"cannot read tokenizer {path}: {error}") from None
    return tokenizer_from_json(data)


def build_tokenizer(kind: str, text: str, vocab_size: int = 512):
    if kind == "char":
        return CharTokenizer.train(text)
    if kind == "bpe":
        return BPETokenizer.train(text, vocab_size)
    raise MinilmError(f"tokenizer must be 'char' or 'bpe'; got {kind!r}")
