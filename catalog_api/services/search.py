"""Search: a text backend, then maturity and region filters, then the profile's re-ranking.

Two text backends answer the same question ("which titles match, how well"):
the embedded in-memory index (default) and PostgreSQL full text plus trigram
similarity (when the database is PostgreSQL). Filtering and re-ranking are
shared, so both backends obey the same rules.
"""

from __future__ import annotations

import math
from typing import Protocol

from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from catalog_api.services.catalog import TitleFilters
from catalog_api.services.catalog_cache import CatalogSnapshot, CatalogTitle
from catalog_api.services.search_index import SearchHit, SearchIndex
from catalog_api.services.text import tokens

#: How much a fully matching genre affinity lifts a hit, and how much popularity adds.
AFFINITY_BOOST = 0.5
POPULARITY_BOOST = 0.1
CANDIDATES = 500


class TextBackend(Protocol):
    """Finds titles whose text matches a query."""

    name: str

    def search(self, query: str, limit: int) -> list[SearchHit]:
        """Matching titles, best first."""
        ...


class EmbeddedBackend:
    """The in-memory index (rebuilt whenever the catalog snapshot changes)."""

    name = "embedded"

    def __init__(self, index: SearchIndex) -> None:
        self.index = index

    def search(self, query: str, limit: int) -> list[SearchHit]:
        """Delegate to the index."""
        return self.index.search(query, limit)


_PG_QUERY = text(
    """
    SELECT title_id,
           ts_rank(to_tsvector('simple', search_text), to_tsquery('simple', :tsq)) * 4
           + word_similarity(:raw, lower(title)) AS score
    FROM titles
    WHERE to_tsvector('simple', search_text) @@ to_tsquery('simple', :tsq)
       OR :raw <% lower(title)
    ORDER BY score DESC, title_id
    LIMIT :limit
    """
)


class PostgresBackend:
    """PostgreSQL ``tsvector`` full text (prefix on the word being typed) plus ``pg_trgm`` for typos."""

    name = "postgres"

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def search(self, query: str, limit: int) -> list[SearchHit]:
        """Run the full-text and trigram query."""
        words = tokens(query) or tokens(query, keep_stopwords=True)
        if not words:
            return []
        # Words come from the tokenizer ([a-z0-9]+), so they are safe inside a tsquery.
        tsq = " & ".join([*words[:-1], f"{words[-1]}:*"])
        with self._sessions() as session:
            rows = session.execute(_PG_QUERY, {"tsq": tsq, "raw": " ".join(words), "limit": limit}).all()
        return [SearchHit(str(r.title_id), float(r.score)) for r in rows]


def search_titles(
    backend: TextBackend,
    snapshot: CatalogSnapshot,
    query: str,
    *,
    maturity_level: int,
    country: str,
    filters: TitleFilters,
    affinity: dict[str, float],
    plays: dict[str, float],
    limit: int,
) -> list[tuple[CatalogTitle, float]]:
    """Matching titles the profile may see, re-ranked by its genre affinity and popularity."""
    hits = backend.search(query, CANDIDATES)
    if not hits:
        return []
    top = hits[0].score or 1.0
    max_plays = _log_max_plays(plays)
    ranked: list[tuple[CatalogTitle, float]] = []
    for hit in hits:
        title = snapshot.titles.get(hit.title_id)
        if title is None or not title.visible_to(maturity_level, country) or not filters.accepts(title):
            continue
        taste = sum(affinity.get(g, 0.0) for g in title.genres)
        score = (hit.score / top) * (1.0 + AFFINITY_BOOST * min(taste, 1.0))
        score += POPULARITY_BOOST * math.log1p(plays.get(title.title_id, 0.0)) / max_plays
        ranked.append((title, round(score, 6)))
    ranked.sort(key=lambda pair: (-pair[1], pair[0].title_id))
    return ranked[:limit]


_max_plays: tuple[dict[str, float], float] | None = None


def _log_max_plays(plays: dict[str, float]) -> float:
    """``log1p`` of the most plays of any title, for the table at hand (computed once per table, not per query)."""
    global _max_plays
    remembered = _max_plays
    if remembered is not None and remembered[0] is plays:
        return remembered[1]
    value = math.log1p(max(plays.values(), default=0.0)) or 1.0
    _max_plays = (plays, value)
    return value
