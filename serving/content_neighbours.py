"""Content stand-ins for titles that no served model saw in training.

Every candidate model reads a history through the ids it was fitted on, so a
watch of a title nobody played in the training data (a new release, a corner
of the catalog) moved nothing: the next page was the page before. Such a title
is read instead through its nearest *known* titles by catalog content: the
tokens LightFM learns from (``models.lightfm_hybrid.title_features``: genres,
cast, director, tags, maturity, release decade), weighted by TF-IDF so that a
shared director counts for more than a shared maturity rating, compared by
cosine.

The whole table (unknown title → its few nearest known titles) is computed once
when a model version is loaded: one sparse product per chunk of unknown titles
against the known ones, so a request only pays a dict lookup per history entry.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from sklearn.feature_extraction.text import TfidfVectorizer

from serving.catalog import TitleCatalog

logger = logging.getLogger(__name__)

#: Known titles that stand in for one unknown title.
STAND_INS = 3
#: Cosines are compared at this many decimals; within that, the more popular known title wins
#: (it carries more co-watch signal for the models), then catalog order.
DECIMALS = 6
#: Unknown titles per sparse product (a dense block of CHUNK x known titles, float64).
CHUNK = 512


@dataclass(frozen=True)
class ContentNeighbours:
    """Played id no served model knows → catalog titles that the models know, nearest by content first.

    Keys are catalog titles unknown to every served model and the episodes of such a
    series (each unknown to the models too); a known id is never a key, so a history
    of known titles reads exactly as before.

    Attributes:
        table: the stand-ins of each unknown id (no entry: known, or no content overlap).
        unknown: catalog titles that no served model knows (with or without stand-ins).
        build_s: wall seconds the table took at load.
    """

    table: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    unknown: int = 0
    build_s: float = 0.0

    def of(self, played_id: str) -> tuple[str, ...]:
        """The known titles standing in for ``played_id``, best first (empty: none needed, or none found)."""
        return self.table.get(played_id, ())

    def __len__(self) -> int:
        return len(self.table)


def known_titles(catalog: TitleCatalog, vocabulary: Collection[str], series_seeds: int) -> npt.NDArray[np.bool_]:
    """Per catalog title, whether a model with this ``vocabulary`` (played ids it was fitted on) can read it.

    A title is read through itself, or, for a series, through its first ``series_seeds``
    episodes (as the pipeline reads a series named in a history).
    """
    known = np.zeros(len(catalog), dtype=bool)
    for i, title_id in enumerate(catalog.title_ids):
        known[i] = title_id in vocabulary or any(e in vocabulary for e in catalog.episodes_of(title_id)[:series_seeds])
    return known


def build(
    catalog: TitleCatalog,
    known: npt.NDArray[np.bool_],
    popularity_rank: npt.NDArray[np.int64],
    vocabulary: Collection[str],
    k: int = STAND_INS,
) -> ContentNeighbours:
    """The stand-in table of every catalog title not ``known``.

    Args:
        catalog: titles with their content tokens (``TitleCatalog.tokens``).
        known: per catalog title, whether the served models can read it (``known_titles``).
        popularity_rank: per catalog title, its place in the popularity list (lower: more
            popular); breaks ties between equally near known titles.
        vocabulary: the played ids the models know (an unknown series' episodes outside it become keys too).
        k: stand-ins per unknown title.
    """
    start = time.perf_counter()
    n = len(catalog)
    unknown_total = int(n - known.sum())
    docs = [catalog.tokens[i] if i < len(catalog.tokens) else [] for i in range(n)]
    known_rows = np.flatnonzero(known)
    if not unknown_total or not len(known_rows) or not any(docs):
        return ContentNeighbours(unknown=unknown_total, build_s=time.perf_counter() - start)
    vectorizer = TfidfVectorizer(analyzer=_tokens, lowercase=False, dtype=np.float64)
    matrix = vectorizer.fit_transform(docs).tocsr()  # rows l2-normalised: a row product is a cosine
    known_rows = known_rows[np.argsort(popularity_rank[known_rows], kind="stable")]  # most popular first
    asking = np.flatnonzero(~known & (matrix.getnnz(axis=1) > 0))
    targets = matrix[known_rows].T.tocsc()
    kk = min(k, len(known_rows))
    # Within a rounded cosine, a column further down the popularity order loses by less than the rounding step.
    tie_break = np.arange(len(known_rows), dtype=np.float64) * (0.1 ** (DECIMALS + 1) / len(known_rows))
    titles = catalog.title_ids
    table: dict[str, tuple[str, ...]] = {}
    for lo in range(0, len(asking), CHUNK):
        rows = asking[lo : lo + CHUNK]
        cosine = (matrix[rows] @ targets).toarray()
        score = np.round(cosine, DECIMALS) - tie_break
        top = (
            np.argpartition(-score, kk - 1, axis=1)[:, :kk]
            if kk < len(known_rows)
            else np.tile(np.arange(len(known_rows)), (len(rows), 1))
        )
        order = np.take_along_axis(score, top, axis=1).argsort(axis=1)[:, ::-1]
        top = np.take_along_axis(top, order, axis=1)
        near = np.take_along_axis(cosine, top, axis=1) > 0  # a shared token at least
        for row, columns, keep in zip(rows.tolist(), top.tolist(), near.tolist(), strict=True):
            chosen = tuple(titles[known_rows[c]] for c, ok in zip(columns, keep, strict=True) if ok)
            if chosen:
                table[titles[row]] = chosen
    for title_id in list(table):
        for episode_id in catalog.episodes_of(title_id):
            if episode_id not in vocabulary:
                table.setdefault(episode_id, table[title_id])
    return ContentNeighbours(table, unknown_total, time.perf_counter() - start)


def popularity_rank(catalog: TitleCatalog, popular: Sequence[tuple[str, float]]) -> npt.NDArray[np.int64]:
    """Per catalog title, the first place of it or one of its episodes in ``popular`` (absent: last)."""
    index = catalog.played_index()
    rank = np.full(len(catalog), len(popular), dtype=np.int64)
    for place, (played_id, _) in enumerate(popular):
        i = index.get(played_id)
        if i is not None and rank[i] > place:
            rank[i] = place
    return rank


def _tokens(doc: Sequence[str]) -> Sequence[str]:
    """The analyzer: a title's tokens are already its terms."""
    return doc
