"""The poem shipped with knetapi for character-level language models (the paper's CharLM)."""

from __future__ import annotations

from importlib import resources

import numpy as np


def hiawatha() -> tuple[str, list[str], np.ndarray]:
    """"The Song of Hiawatha" (Longfellow, 1855), integer-encoded character by character.

    Returns ``(text, vocab, codes)``: ``text`` the whole poem as a str (184,138 characters, LF line
    endings); ``vocab`` the sorted list of its 63 distinct characters; ``codes`` an int64 numpy
    array of shape (len(text),) with ``vocab[codes[i]] == text[i]``. The file ships inside the
    package (``knetapi/data/hiawatha.txt``; its README gives the source).
    """
    text = (resources.files(__package__) / "hiawatha.txt").read_text(encoding="utf-8")
    vocab = sorted(set(text))
    index = {c: i for i, c in enumerate(vocab)}
    codes = np.fromiter((index[c] for c in text), dtype=np.int64, count=len(text))
    return text, vocab, codes
