"""The embedded full-text index: weighted fields, prefix matching, typo tolerance.

Built in memory from the catalog snapshot at start-up (about a second for the
8,807-title Netflix catalog). A query word matches a vocabulary word exactly,
by prefix when it is the word being typed (the last one), or within one or two
edits (rapidfuzz optimal string alignment: a swap of neighbours is one edit) when nothing matches exactly. Scores are
BM25-like: field weight x idf x match quality, with a penalty when not every
query word matched.
"""

from __future__ import annotations

import bisect
import math
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import OSA

from catalog_api.services.catalog_cache import CatalogSnapshot
from catalog_api.services.text import tokens

#: How much a hit in each field counts.
FIELD_WEIGHTS = {"title": 4.0, "cast": 2.0, "director": 2.0, "genres": 1.5, "synopsis": 1.0}
PREFIX_QUALITY = 0.8
TYPO_QUALITY = {1: 0.6, 2: 0.35}
MAX_EXPANSIONS = 40


@dataclass(frozen=True)
class SearchHit:
    """One matching title and its text score (higher is better)."""

    title_id: str
    score: float


class SearchIndex:
    """Inverted index over a catalog snapshot."""

    def __init__(self, snapshot: CatalogSnapshot) -> None:
        postings: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        for title in snapshot.titles.values():
            fields = {
                "title": title.title,
                "cast": " ".join(title.cast),
                "director": " ".join(title.director),
                "genres": " ".join(title.genres),
                "synopsis": title.synopsis,
            }
            for field_name, text in fields.items():
                words = tokens(text, keep_stopwords=field_name == "title")
                if not words:
                    continue
                weight = FIELD_WEIGHTS[field_name]
                for word in set(words):
                    current = postings[word][title.title_id]
                    postings[word][title.title_id] = max(current, weight)
        n_docs = max(1, len(snapshot.titles))
        self._doc_ids = sorted(snapshot.titles)
        position = {doc: i for i, doc in enumerate(self._doc_ids)}
        # Postings as arrays (doc index int32, weight x idf float32): a query word costs a few
        # vectorised operations over at most the whole catalog, however common the word.
        self._postings: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for word, docs in postings.items():
            idf = math.log(1.0 + (n_docs - len(docs) + 0.5) / (len(docs) + 0.5))
            self._postings[word] = (
                np.fromiter((position[d] for d in docs), dtype=np.int32, count=len(docs)),
                np.fromiter((w * idf for w in docs.values()), dtype=np.float32, count=len(docs)),
            )
        self._vocabulary = sorted(self._postings)
        self._by_start: dict[tuple[int, str], list[str]] = defaultdict(list)
        for word in self._vocabulary:
            self._by_start[(len(word), word[0])].append(word)
        self._near: dict[tuple[int, int, str, str], list[str]] = {}

    def __len__(self) -> int:
        return len(self._vocabulary)

    def _prefixed(self, prefix: str) -> list[str]:
        start = bisect.bisect_left(self._vocabulary, prefix)
        found = []
        for word in self._vocabulary[start : start + MAX_EXPANSIONS * 4]:
            if not word.startswith(prefix):
                break
            found.append(word)
        # Prefer the most selective expansions' cousins: shortest first (closest to what was typed).
        return sorted(found, key=len)[:MAX_EXPANSIONS]

    def _typos(self, word: str) -> list[tuple[str, int]]:
        if len(word) < 4:
            return []
        max_edits = 1 if len(word) < 7 else 2
        # Candidates: words of a near length that start with the typed word's first or second
        # letter (so a slip anywhere but in the very first letter, a stray first letter and a
        # swap of the first two are all found), gathered once per shape. Comparing against every
        # word of a near length cost 15 ms for a six-letter typo; this is about a tenth of it.
        shape = (len(word), max_edits, word[0], word[1])
        candidates = self._near.get(shape)
        if candidates is None:
            lengths = range(len(word) - max_edits, len(word) + max_edits + 1)
            letters = dict.fromkeys(word[:2])
            candidates = self._near[shape] = [w for n in lengths for c in letters for w in self._by_start[(n, c)]]
        found = process.extract(word, candidates, scorer=OSA.distance, score_cutoff=max_edits, limit=MAX_EXPANSIONS)
        return [(match, int(distance)) for match, distance, _ in found]

    def expand(self, word: str, *, typing: bool) -> dict[str, float]:
        """Vocabulary words that ``word`` stands for, with a match quality in (0, 1]."""
        expansions: dict[str, float] = {}
        if word in self._postings:
            expansions[word] = 1.0
        if typing:
            for match in self._prefixed(word):
                expansions.setdefault(match, PREFIX_QUALITY)
        if not expansions:
            for match, distance in self._typos(word):
                expansions.setdefault(match, TYPO_QUALITY.get(distance, 0.25))
        return expansions

    def search(self, query: str, limit: int = 1000) -> list[SearchHit]:
        """Titles matching ``query``, best first (unfiltered; callers apply maturity and region)."""
        words = tokens(query) or tokens(query, keep_stopwords=True)
        if not words or not self._doc_ids:
            return []
        n_docs = len(self._doc_ids)
        totals = np.zeros(n_docs, dtype=np.float32)
        matched = np.zeros(n_docs, dtype=np.int16)
        for position, word in enumerate(words):
            best = np.zeros(n_docs, dtype=np.float32)
            typing = position == len(words) - 1
            for match, quality in self.expand(word, typing=typing).items():
                docs, weights = self._postings[match]
                best[docs] = np.maximum(best[docs], weights * quality)
            totals += best
            matched += best > 0
        found = np.flatnonzero(totals)
        if not found.size:
            return []
        scores = totals[found] * (matched[found] / len(words)) ** 2
        if found.size > limit:
            keep = np.argpartition(-scores, limit - 1)[:limit]
            found, scores = found[keep], scores[keep]
        hits = [SearchHit(self._doc_ids[i], float(score)) for i, score in zip(found, scores, strict=True)]
        hits.sort(key=lambda h: (-h.score, h.title_id))
        return hits
