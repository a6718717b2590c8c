"""WordPiece tokenizer for BERT models (uncased BERT, all-MiniLM-L6-v2), loaded from `vocab.txt`.

Two stages, each a short list of rules:

1. Basic tokenization: text -> words.
     special tokens   "[CLS]", "[SEP]", "[PAD]", "[MASK]", "[UNK]" written in the raw text are kept
                      whole and map to their ids (as Hugging Face `tokenizers` does)
     clean            drop U+0000, U+FFFD and control characters (Unicode categories Cc, Cf, Co,
                      Cs, except \\t \\n \\r; unassigned Cn stays); every whitespace character -> " "
     CJK              each CJK ideograph becomes its own word (" " on both sides)
     accents          NFD, then drop the non-spacing marks (category Mn): "café" -> "cafe"
                      (on by default when lower-casing, as in BERT)
     lower-case       character by character
     split            on " ", and around every punctuation character; punctuation is ASCII
                      33-47, 58-64, 91-96, 123-126 (so "$", "+", "^", "`" count) plus Unicode P*
2. WordPiece: each word -> vocabulary pieces, greedy longest match first from the left;
   pieces after the first carry the "##" prefix ("jumps" -> "jump", "##s"). A word that cannot be
   covered, or longer than 100 characters, becomes the single token [UNK].

encode adds [CLS] ... [SEP] (pair: [CLS] a [SEP] b [SEP], token types 0...0 1...1).
Pure Python + NumPy; words are cached, so repeated words cost one dict look-up.
"""
from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import numpy as np

from ..errors import MinilmError

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
MAX_INPUT_CHARS_PER_WORD = 100
CONTINUATION = "##"

# CJK Unified Ideographs blocks, as BERT defines "Chinese characters" (Hangul and kana are not).
# Extension E really starts at U+2B820, but BERT's list (and so every BERT tokenizer, Hugging
# Face `tokenizers` included) starts it at U+2B920; we keep that, so U+2B820-U+2B91F are not split.
_CJK_RANGES = ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
               (0x2B740, 0x2B81F), (0x2B920, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F))
_CONTROL_CATEGORIES = frozenset(("Cc", "Cf", "Co", "Cs"))
_ASCII_PUNCTUATION = {chr(code) for lo, hi in ((33, 47), (58, 64), (91, 96), (123, 126))
                      for code in range(lo, hi + 1)}
# Whitespace: \t \n \r and the Unicode White_Space characters that are not controls.
_WHITESPACE = set("\t\n\r \u00a0\u1680\u2028\u2029\u202f\u205f\u3000") | {chr(c) for c in range(0x2000, 0x200B)}


def is_cjk(char: str) -> bool:
    code = ord(char)
    return any(lo <= code <= hi for lo, hi in _CJK_RANGES)


def is_whitespace(char: str) -> bool:
    return char in _WHITESPACE or unicodedata.category(char) == "Zs"


def is_control(char: str) -> bool:
    """Categories Cc, Cf, Co, Cs, except \\t \\n \\r, which count as whitespace. Unassigned code
    points (Cn) are kept, as Hugging Face `tokenizers` keeps them (they become [UNK])."""
    return char not in "\t\n\r" and unicodedata.category(char) in _CONTROL_CATEGORIES


def is_punctuation(char: str) -> bool:
    return char in _ASCII_PUNCTUATION or unicodedata.category(char).startswith("P")


def _ascii_table(lowercase: bool) -> dict[int, str | None]:
    """str.translate table doing clean + lower-case + punctuation padding for ASCII text at once."""
    table: dict[int, str | None] = {}
    for code in range(128):
        char = chr(code)
        if char in "\t\n\r":
            table[code] = " "
        elif code == 0 or is_control(char):
            table[code] = None
        elif char in _ASCII_PUNCTUATION:
            table[code] = f" {char} "
        elif lowercase and char.isupper():
            table[code] = char.lower()
    return table


class WordPieceTokenizer:
    """BERT's WordPiece tokenizer. `vocab` lists the tokens in id order (vocab.txt's lines)."""

    def __init__(self, vocab: list[str], lowercase: bool = True, strip_accents: bool | None = None,
                 tokenize_cjk: bool = True, split_special_tokens: bool = False,
                 model_max_length: int | None = None):
        self.id_to_token = list(vocab)
        self.token_to_id = {token: i for i, token in enumerate(self.id_to_token)}
        if len(self.token_to_id) != len(self.id_to_token):
            seen: set[str] = set()
            duplicates = [t for t in self.id_to_token if t in seen or seen.add(t)]
            raise MinilmError(f"WordPieceTokenizer: the vocabulary repeats {len(duplicates)} token(s), "
                              f"e.g. {duplicates[:5]}; each line of vocab.txt must be a distinct token")
        missing = [t for t in SPECIAL_TOKENS if t not in self.token_to_id]
        if missing:
            raise MinilmError(f"WordPieceTokenizer: the vocabulary lacks the special token(s) {missing}; "
                              f"a BERT vocab.txt holds all of {list(SPECIAL_TOKENS)}")
        self.lowercase = lowercase
        self.strip_accents = lowercase if strip_accents is None else strip_accents   # BERT: follows lower-casing
        self.tokenize_cjk = tokenize_cjk
        self.split_special_tokens = split_special_tokens
        self.model_max_length = model_max_length
        self.pad_id, self.unk_id, self.cls_id, self.sep_id, self.mask_id = (
            self.token_to_id[t] for t in SPECIAL_TOKENS)
        self.special_ids = frozenset((self.pad_id, self.unk_id, self.cls_id, self.sep_id, self.mask_id))
        self._special_pattern = re.compile("(" + "|".join(re.escape(t) for t in SPECIAL_TOKENS) + ")")
        self._longest_piece = max(len(t) for t in self.id_to_token)
        self._ascii_table = _ascii_table(lowercase)
        self._char_cache: dict[str, str] = {}     # char -> its text after clean + CJK padding
        self._mark_cache: dict[str, str] = {}     # char (after NFD) -> "" / lower-cased / " p "
        self._word_cache: dict[str, list[int]] = {}

    # ---------------------------------------------------------------- loading
    @classmethod
    def from_vocab(cls, path, lowercase: bool = True, **options) -> "WordPieceTokenizer":
        """Reads vocab.txt: one token a line, the line number is the id."""
        path = Path(path)
        if not path.is_file():
            raise MinilmError(f"WordPieceTokenizer.from_vocab: no vocabulary file at {path}")
        with open(path, encoding="utf-8") as handle:
            vocab = [line.rstrip("\r\n") for line in handle]
        while vocab and vocab[-1] == "":
            vocab.pop()
        return cls(vocab, lowercase=lowercase, **options)

    @classmethod
    def from_pretrained(cls, directory) -> "WordPieceTokenizer":
        """Reads a Hugging Face BERT directory: vocab.txt, and tokenizer_config.json when present
        (do_lower_case, strip_accents, tokenize_chinese_chars, model_max_length)."""
        import json
        directory = Path(directory)
        if not (directory / "vocab.txt").is_file():
            raise MinilmError(f"WordPieceTokenizer.from_pretrained: {directory} has no vocab.txt "
                              f"(expected a Hugging Face BERT model directory)")
        config = {}
        if (directory / "tokenizer_config.json").is_file():
            config = json.loads((directory / "tokenizer_config.json").read_text(encoding="utf-8"))
        max_length = config.get("model_max_length")
        return cls.from_vocab(directory / "vocab.txt",
                              lowercase=bool(config.get("do_lower_case", True)),
                              strip_accents=config.get("strip_accents"),
                              tokenize_cjk=bool(config.get("tokenize_chinese_chars", True)),
                              model_max_length=int(max_length) if isinstance(max_length, int) and max_length < 10**9 else None)

    @property
    def vocab_size(self) -> int:
        return len(self.id_to_token)

    # ---------------------------------------------------------------- 1. basic tokenization
    def _clean_char(self, char: str) -> str:
        """clean + CJK rule for one character (before accent stripping)."""
        if char == "\x00" or char == "\ufffd" or is_control(char):
            return ""
        if is_whitespace(char):
            return " "
        if self.tokenize_cjk and is_cjk(char):
            return f" {char} "
        return char

    def _final_char(self, char: str) -> str:
        """accent + lower-case + punctuation rule for one character (after NFD)."""
        if self.strip_accents and unicodedata.category(char) == "Mn":
            return ""
        if self.lowercase:
            char = char.lower()
        return "".join(f" {c} " if is_punctuation(c) else c for c in char)

    def normalize(self, text: str) -> str:
        """Text with every rule of basic tokenization applied; words are separated by " "."""
        if text.isascii():
            return text.translate(self._ascii_table)
        char_cache = self._char_cache
        pieces = []
        for char in text:
            out = char_cache.get(char)
            if out is None:
                out = char_cache[char] = self._clean_char(char)
            pieces.append(out)
        text = "".join(pieces)
        if self.strip_accents:
            text = unicodedata.normalize("NFD", text)
        mark_cache = self._mark_cache
        pieces = []
        for char in text:
            out = mark_cache.get(char)
            if out is None:
                out = mark_cache[char] = self._final_char(char)
            pieces.append(out)
        return "".join(pieces)

    def basic_tokenize(self, text: str) -> list[str]:
        """Words before WordPiece (special tokens such as "[CLS]" in the text stay whole)."""
        if self.split_special_tokens or "[" not in text:
            return [word for word in self.normalize(text).split(" ") if word]
        words: list[str] = []
        for index, chunk in enumerate(self._special_pattern.split(text)):
            if index % 2:                  # re.split puts the matched special tokens at odd indices
                words.append(chunk)
            else:
                words.extend(word for word in self.normalize(chunk).split(" ") if word)
        return words

    # ---------------------------------------------------------------- 2. WordPiece
    def _word_ids(self, word: str) -> list[int]:
        """Greedy longest-match-first split of one word into vocabulary ids; [UNK] if impossible."""
        if len(word) > MAX_INPUT_CHARS_PER_WORD:
            return [self.unk_id]
        vocab, ids, start = self.token_to_id, [], 0
        while start < len(word):
            end = min(len(word), start + self._longest_piece)
            prefix = CONTINUATION if start > 0 else ""
            while end > start:
                piece_id = vocab.get(prefix + word[start:end])
                if piece_id is not None:
                    break
                end -= 1
            if end == start:           # no piece fits at `start`: the whole word is unknown
                return [self.unk_id]
            ids.append(piece_id)
            start = end
        return ids

    def _ids(self, text: str) -> list[int]:
        cache, ids = self._word_cache, []
        for word in self.basic_tokenize(text):
            word_ids = cache.get(word)
            if word_ids is None:
                word_ids = self._word_ids(word)        # a special token is in the vocabulary: one id
                if len(cache) < 500_000:
                    cache[word] = word_ids
            ids.extend(word_ids)
        return ids

    def tokenize(self, text: str) -> list[str]:
        """text -> WordPiece tokens, without [CLS]/[SEP]: "Jumps!" -> ["jump", "##s", "!"]."""
        return [self.id_to_token[i] for i in self._ids(text)]

    # ---------------------------------------------------------------- encoding
    def encode(self, text: str, add_special_tokens: bool = True, max_length: int | None = None,
               truncation: bool = True) -> list[int]:
        """[CLS] tokens [SEP] as ids; with max_length (counting [CLS]/[SEP]) the tokens are cut."""
        ids = self._ids(text)
        n_special = 2 if add_special_tokens else 0
        if max_length is not None and len(ids) + n_special > max_length:
            self._check_max_length(max_length, n_special, truncation, len(ids) + n_special)
            ids = ids[:max_length - n_special]
        return [self.cls_id, *ids, self.sep_id] if add_special_tokens else ids

    def encode_pair(self, text_a: str, text_b: str, add_special_tokens: bool = True,
                    max_length: int | None = None, truncation: bool = True) -> tuple[list[int], list[int]]:
        """([CLS] a [SEP] b [SEP], token types 0 for [CLS] a [SEP], 1 for b [SEP]).
        Too long: the longer text is cut first (see _longest_first), from its end."""
        ids_a, ids_b = self._ids(text_a), self._ids(text_b)
        n_special = 3 if add_special_tokens else 0
        if max_length is not None and len(ids_a) + len(ids_b) + n_special > max_length:
            self._check_max_length(max_length, n_special, truncation, len(ids_a) + len(ids_b) + n_special)
            len_a, len_b = _longest_first(len(ids_a), len(ids_b), max_length - n_special)
            ids_a, ids_b = ids_a[:len_a], ids_b[:len_b]
        if add_special_tokens:
            ids_a, ids_b = [self.cls_id, *ids_a, self.sep_id], [*ids_b, self.sep_id]
        return ids_a + ids_b, [0] * len(ids_a) + [1] * len(ids_b)

    def _check_max_length(self, max_length: int, n_special: int, truncation: bool, length: int) -> None:
        if not truncation:
            raise MinilmError(f"WordPieceTokenizer: the text has {length} tokens, more than max_length="
                              f"{max_length}; pass truncation=True to cut it, or a larger max_length")
        if max_length < n_special:
            raise MinilmError(f"WordPieceTokenizer: max_length={max_length} leaves no room for the "
                              f"{n_special} special tokens ([CLS]/[SEP]); use max_length >= {n_special + 1}")

    def encode_batch(self, texts, max_length: int | None = None, padding: bool | str = True,
                     truncation: bool = True, add_special_tokens: bool = True):
        """texts (strings, or (a, b) pairs) -> (input_ids, attention_mask, token_type_ids), each (N, T) int64.

        padding=True / "longest": T = the longest sequence; "max_length": T = max_length;
        False: every sequence must have the same length. Padding is [PAD] on the right, mask 0 there."""
        if isinstance(texts, str):
            raise MinilmError("WordPieceTokenizer.encode_batch: texts must be a list of strings; "
                              "got one string (use encode, or wrap it in a list)")
        rows, types = [], []
        for text in texts:
            if isinstance(text, (tuple, list)):
                if len(text) != 2:
                    raise MinilmError(f"WordPieceTokenizer.encode_batch: a pair must be (text_a, text_b); "
                                      f"got {len(text)} items")
                ids, type_ids = self.encode_pair(text[0], text[1], add_special_tokens, max_length, truncation)
            else:
                ids = self.encode(text, add_special_tokens, max_length, truncation)
                type_ids = [0] * len(ids)
            rows.append(ids)
            types.append(type_ids)
        lengths = [len(ids) for ids in rows]
        if padding is True or padding == "longest":
            width = max(lengths, default=0)
        elif padding == "max_length":
            if max_length is None:
                raise MinilmError('WordPieceTokenizer.encode_batch: padding="max_length" needs max_length')
            width = max_length
        elif padding is False:
            if len(set(lengths)) > 1:
                raise MinilmError(f"WordPieceTokenizer.encode_batch: padding=False but the sequences have "
                                  f"different lengths ({min(lengths)} to {max(lengths)}); use padding=True")
            width = max(lengths, default=0)
        else:
            raise MinilmError(f'WordPieceTokenizer.encode_batch: padding must be True, False, "longest" or '
                              f'"max_length"; got {padding!r}')
        input_ids = np.full((len(rows), width), self.pad_id, dtype=np.int64)        # (N, T)
        attention_mask = np.zeros((len(rows), width), dtype=np.int64)              # (N, T), 1 = real token
        token_type_ids = np.zeros((len(rows), width), dtype=np.int64)              # (N, T)
        for row, (ids, type_ids) in enumerate(zip(rows, types)):
            input_ids[row, :len(ids)] = ids
            attention_mask[row, :len(ids)] = 1
            token_type_ids[row, :len(ids)] = type_ids
        return input_ids, attention_mask, token_type_ids

    # ---------------------------------------------------------------- decoding
    def convert_ids_to_tokens(self, ids) -> list[str]:
        return [self.id_to_token[int(i)] for i in ids]

    def decode(self, ids, skip_special_tokens: bool = True, cleanup: bool = True) -> str:
        """ids -> text: "##" pieces glue to the previous token (a leading one keeps its "##"),
        other tokens are joined by " ";
        cleanup also glues a token that starts with . , ! ? to the previous one ("dog ." -> "dog."),
        as Hugging Face's WordPiece decoder does."""
        text = ""
        for i in ids:
            i = int(i)
            if skip_special_tokens and i in self.special_ids:
                continue
            token = self.id_to_token[i]
            if token.startswith(CONTINUATION) and text:
                text += token[len(CONTINUATION):]
            elif text and not (cleanup and token[:1] in (".", ",", "!", "?")):
                text += " " + token
            else:
                text += token
        return text

    def __repr__(self) -> str:
        return (f"WordPieceTokenizer(vocab_size={self.vocab_size}, lowercase={self.lowercase}, "
                f"strip_accents={self.strip_accents})")


def _longest_first(len_a: int, len_b: int, budget: int) -> tuple[int, int]:
    """Lengths of a and b after "longest first" truncation to len_a + len_b <= budget, as Hugging
    Face `tokenizers` does it: the shorter text is kept whole if it fits in half the budget and the
    longer gets the rest; otherwise each gets half, and an odd budget's extra token goes to the
    longer text (to b on a tie)."""
    if len_a + len_b <= budget:
        return len_a, len_b
    shorter, longer = min(len_a, len_b), max(len_a, len_b)
    if shorter <= budget // 2:
        kept_shorter, kept_longer = shorter, budget - shorter
    else:
        kept_shorter, kept_longer = budget // 2, budget - budget // 2
    return (kept_shorter, kept_longer) if len_a <= len_b else (kept_longer, kept_shorter)
