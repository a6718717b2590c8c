"""Data: corpora (built-in and user files), tokenizers (char, byte-level BPE), batching."""
from .batching import eval_windows, get_batch
from .corpus import Corpus, builtin_corpus, load_corpus, python_source_corpus
from .tokenizers import BPETokenizer, CharTokenizer, build_tokenizer, load_tokenizer, tokenizer_from_json
from .wordpiece import WordPieceTokenizer
