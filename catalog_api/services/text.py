"""Tokenising shared by the search index and its tests: lower case, accents folded."""

from __future__ import annotations

import re
import unicodedata

_WORD = re.compile(r"[a-z0-9]+")

#: Words too common to rank by (they would touch most of the catalog's synopses).
STOPWORDS = frozenset(
    {
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "for",
        "from",
        "has",
        "he",
        "her",
        "his",
        "in",
        "into",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "she",
        "that",
        "the",
        "their",
        "them",
        "they",
        "this",
        "to",
        "was",
        "when",
        "where",
        "which",
        "while",
        "who",
        "with",
    }
)


def fold(text: str) -> str:
    """Lower case without accents: ``"Amélie"`` → ``"amelie"``."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def tokens(text: str, *, keep_stopwords: bool = False) -> list[str]:
    """Words of ``text`` after folding; stop-words dropped unless asked to keep them."""
    words = _WORD.findall(fold(text))
    return words if keep_stopwords else [w for w in words if w not in STOPWORDS]
