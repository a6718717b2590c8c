"""Text corpora: the built-in default (CPython's own pydoc topics, English prose that ships with
every Python, so nothing is downloaded) or any UTF-8 file or folder of files.

Documents are split deterministically: the first (1 - val_fraction) of every document trains, the
rest validates, so both halves see every kind of text.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import MinilmError

TEXT_SUFFIXES = {".txt", ".md", ".py", ".rst", ".text", ""}


@dataclass
class Corpus:
    name: str
    documents: list[str]

    @property
    def text(self) -> str:
        return "\n\n".join(self.documents)

    def split(self, val_fraction: float = 0.1) -> tuple[str, str]:
        """(train text, validation text): the tail of every document goes to validation."""
        if not 0 < val_fraction < 1:
            raise MinilmError(f"val_fraction must be in (0, 1); got {val_fraction}")
        train, val = [], []
        for doc in self.documents:
            cut = int(round(len(doc) * (1 - val_fraction)))
            train.append(doc[:cut])
            val.append(doc[cut:])
        return "\n\n".join(train), "\n\n".join(v for v in val if v)

    def __len__(self):
        return sum(len(d) for d in self.documents)


def builtin_corpus() -> Corpus:
    """The English documentation topics that ship with CPython (pydoc_data.topics), ~465k chars."""
    from pydoc_data.topics import topics
    return Corpus("pydoc_data.topics", [topics[key].strip() for key in sorted(topics)])


def python_source_corpus(max_files: int = 80, max_chars: int = 600_000) -> Corpus:
    """Python source code from the standard library (a second domain that ships with CPython)."""
    import sysconfig
    root = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in root.glob("*.py") if p.is_file())
    docs, total = [], 0
    for path in files[:max_files]:
        text = path.read_text(encoding="utf-8", errors="replace")
        docs.append(text)
        total += len(text)
        if total >= max_chars:
            break
    return Corpus("python-stdlib", docs)


def load_corpus(path: str | None) -> Corpus:
    """None -> the built-in corpus; a file -> one document; a folder -> every text file under it."""
    if path is None or path in ("builtin", "pydoc_data.topics"):
        return builtin_corpus()
    if path == "python-stdlib":
        return python_source_corpus()
    p = Path(path)
    if not p.exists():
        raise MinilmError(f"--data: no such file or folder: {path}")
    paths = [p] if p.is_file() else sorted(f for f in p.rglob("*") if f.is_file() and f.suffix in TEXT_SUFFIXES)
    docs = []
    for f in paths:
        try:
            text = f.read_text(encoding="utf-8")
        except UnicodeDecodeError as error:
            raise MinilmError(f"--data: {f} is not UTF-8 text ({error})") from None
        if text.strip():
            docs.append(text)
    if not docs:
        raise MinilmError(f"--data: {path} holds no text (empty file, or no .txt/.md/.py/.rst files)")
    return Corpus(str(p), docs)
