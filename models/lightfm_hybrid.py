"""LightFM hybrid: titles and profiles described by features, so brand-new titles get recommended.

A title's embedding is the sum of its feature embeddings (genres, maturity, year,
cast, director, tags) plus an identity embedding when it has interactions. A
title nobody has watched yet still has feature embeddings learned from similar
titles, which is the cold-start path; the test suite shows it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.sparse as sp

from models.history import Histories
from models.scoring import ItemScorer, UserContext, column_major

Features = Mapping[str, Sequence[str]]


def title_tokens(
    *,
    genres: Iterable[str] = (),
    maturity_level: int | None = None,
    release_year: int | None = None,
    cast: Iterable[str] = (),
    director: Iterable[str] = (),
    tags: Iterable[str] = (),
    max_cast: int = 5,
) -> list[str]:
    """Feature tokens of one title (``"genre:Drama"``, ``"decade:1990"``, ...), the LightFM vocabulary."""
    tokens = [f"genre:{g}" for g in genres]
    if maturity_level is not None:
        tokens.append(f"maturity:{int(maturity_level)}")
    if release_year:
        tokens.append(f"decade:{int(release_year) // 10 * 10}")
    tokens += [f"cast:{c}" for c in list(cast)[:max_cast]]
    tokens += [f"director:{d}" for d in director]
    tokens += [f"tag:{t.lower()}" for t in tags]
    return tokens


def title_features(titles: pd.DataFrame) -> dict[str, list[str]]:
    """title_id → ``title_tokens`` of each row of a lake ``titles`` frame (missing columns give no tokens).

    The one reading of title metadata as tokens: training passes them to LightFM, and
    serving finds a title's content neighbours with the same vocabulary
    (``serving.content_neighbours``).
    """

    def listed(row: Mapping[str, Any], column: str) -> list[str]:
        value = row.get(column)
        return [str(v) for v in value] if value is not None and not isinstance(value, str | float) else []

    out: dict[str, list[str]] = {}
    for row in titles.to_dict("records"):
        year = row.get("release_year")
        maturity = row.get("maturity_level")
        out[str(row["title_id"])] = title_tokens(
            genres=listed(row, "genres"),
            maturity_level=None if maturity is None or pd.isna(maturity) else int(maturity),
            release_year=None if year is None or pd.isna(year) else int(year),
            cast=listed(row, "cast"),
            director=listed(row, "director"),
            tags=listed(row, "tags"),
        )
    return out


def profile_tokens(
    *, maturity_level: int | None = None, country: str | None = None, is_kids: bool = False
) -> list[str]:
    """Feature tokens of one profile."""
    tokens = ["kids"] if is_kids else []
    if maturity_level is not None:
        tokens.append(f"maturity:{int(maturity_level)}")
    if country:
        tokens.append(f"country:{country}")
    return tokens


def feature_matrix(
    ids: Sequence[str], features: Features, identity: npt.NDArray[np.bool_]
) -> tuple[sp.csr_matrix, list[str]]:
    """Rows = ids, columns = identity columns (where ``identity``) then feature tokens; rows sum to 1."""
    vocab = sorted({tok for toks in features.values() for tok in toks})
    column = {tok: len(ids) + k for k, tok in enumerate(vocab)}
    rows, cols = [], []
    for r, external_id in enumerate(ids):
        if identity[r]:
            rows.append(r)
            cols.append(r)
        for tok in features.get(external_id, ()):
            rows.append(r)
            cols.append(column[tok])
    m = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(len(ids), len(ids) + len(vocab)))
    sums = np.asarray(m.sum(axis=1)).ravel()
    sums[sums == 0] = 1.0
    return sp.csr_matrix(sp.diags(1.0 / sums) @ m, dtype=np.float32), vocab


class LightFMHybrid(ItemScorer):
    """LightFM (WARP loss) with title and profile features.

    ``fit(interactions, item_features={title_id: tokens}, user_features={profile_id: tokens})``;
    titles in ``item_features`` with no interactions join the catalog (cold start).
    A history passed at recommendation time is folded in by least squares against the fixed
    item embeddings, then mapped into the space of the fitted user vectors by a linear map
    learnt from the users the model knows (``_fold_in``), so a viewer the model never saw
    gets a user vector like the one a refit would have given them.

    Args:
        no_components: embedding size.
        epochs: passes over the interactions.
        learning_rate: adagrad step.
        loss: LightFM loss (``warp`` suits top-n ranking).
        seed: random seed.
    """

    name: ClassVar[str] = "lightfm"
    tuning_space: ClassVar[dict[str, list[Any]]] = {"no_components": [32, 64]}
    similar_priority: ClassVar[int] = 60
    #: Regularisation and confidence of the fold-in solve (``_fold_in``).
    FOLD_IN_REG: ClassVar[float] = 10.0
    FOLD_IN_ALPHA: ClassVar[float] = 40.0
    #: Ridge penalty of the map from the least-squares solve to the fitted user vectors (``_fit_fold_map``).
    FOLD_MAP_REG: ClassVar[float] = 1.0

    def __init__(
        self, no_components: int = 32, epochs: int = 20, learning_rate: float = 0.05, loss: str = "warp", seed: int = 0
    ) -> None:
        super().__init__(no_components=no_components, epochs=epochs, learning_rate=learning_rate, loss=loss, seed=seed)
        self.no_components = int(no_components)
        self.epochs = int(epochs)
        self.learning_rate = float(learning_rate)
        self.loss = loss
        self.seed = int(seed)
        self._user_emb = np.zeros((0, 0), np.float32)
        self._user_bias = np.zeros(0, np.float32)
        self._item_emb = np.zeros((0, 0), np.float32)
        self._item_bias = np.zeros(0, np.float32)
        self._gram: tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]] | None = None
        self._fold_map: npt.NDArray[np.float64] | None = None

    def _fit(self, hist: Histories, **context: Any) -> None:
        from lightfm import LightFM

        item_features: Features = context.get("item_features") or {}
        user_features: Features = context.get("user_features") or {}
        watched = np.bincount(hist.item_idx, minlength=hist.n_items) > 0
        item_matrix, _ = feature_matrix(hist.items.ids.tolist(), item_features, watched)
        user_matrix_, _ = feature_matrix(hist.users.ids.tolist(), user_features, np.ones(hist.n_users, bool))
        users = hist.user_of_row()
        interactions = sp.coo_matrix(
            (np.ones(len(users), np.float32), (users, hist.item_idx)), shape=(hist.n_users, hist.n_items)
        )
        model = LightFM(
            no_components=self.no_components, loss=self.loss, learning_rate=self.learning_rate, random_state=self.seed
        )
        model.fit(
            interactions, user_features=user_matrix_, item_features=item_matrix, epochs=self.epochs, num_threads=1
        )
        item_bias, item_emb = model.get_item_representations(item_matrix)
        self._item_bias, self._item_emb = np.asarray(item_bias, np.float32), column_major(item_emb)
        self._user_bias, self._user_emb = (
            np.asarray(a, np.float32) for a in model.get_user_representations(user_matrix_)
        )
        self._gram = None
        self._fold_map = self._fit_fold_map(hist)

    def _score(self, users: Sequence[UserContext]) -> npt.NDArray[np.float32]:
        rows = []
        for ctx in users:
            if ctx.user_idx >= 0 and not ctx.from_history:
                rows.append(self._user_emb[ctx.user_idx])
            elif len(ctx.items):
                rows.append(self._fold_in(ctx.items))
            else:
                rows.append(np.zeros(self.no_components, np.float32))
        return np.vstack(rows) @ self._item_emb.T + self._item_bias[None, :]  # type: ignore[no-any-return]

    def _fold_in(self, items: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
        """A user vector for a history: the least-squares solve, through the fitted fold-in map.

        The mean of the history's item embeddings (the first fold-in) reached 0.28 of the
        refit model's ndcg@10 on ml-latest-small (``bench/bench_foldin.py``): its norm is far
        below a fitted user's, so item biases (popularity) decided the list. The least-squares
        solve (``_solve``, as ALS folds in) reached 0.77: WARP's user vectors are not least-squares
        ones. Mapping the solve to them (``_fit_fold_map``) reached 0.97 (MovieTweetings 1.13,
        as without the map).
        """
        solved = self._solve(items)
        if self._fold_map is None:  # a bundle saved before the map existed
            return solved.astype(np.float32)
        return (solved @ self._fold_map[:-1] + self._fold_map[-1]).astype(np.float32)

    def _solve(self, items: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
        """argmin Σ c (p - u·v)² + λ|u|² over the fixed item vectors, c = 1 + alpha on watched items."""
        if self._gram is None:
            V = np.ascontiguousarray(self._item_emb, dtype=np.float64)  # rows gathered per fold-in
            self._gram = (V, V.T @ V + self.FOLD_IN_REG * np.eye(V.shape[1]))
        V, A = self._gram
        Vh = V[items]
        return np.linalg.solve(A + self.FOLD_IN_ALPHA * Vh.T @ Vh, (1.0 + self.FOLD_IN_ALPHA) * Vh.sum(axis=0))  # type: ignore[no-any-return]

    def _fit_fold_map(self, hist: Histories) -> npt.NDArray[np.float64] | None:
        """The linear map (with intercept, last row) from a known user's solve to their fitted vector.

        Ridge regression over every user with a history: WARP places users by ranking, not
        by squared error, so the solve lands in a rotated and rescaled copy of their space,
        and the same map serves every viewer. None when there are too few users to learn it.
        """
        users = [u for u in range(hist.n_users) if hist.indptr[u + 1] > hist.indptr[u]]
        if len(users) <= self.no_components:
            return None
        solved = np.vstack([self._solve(hist.item_idx[hist.user_rows(u)]) for u in users])
        x = np.hstack([solved, np.ones((len(users), 1))])
        y = self._user_emb[users].astype(np.float64)
        return np.linalg.solve(x.T @ x + self.FOLD_MAP_REG * np.eye(x.shape[1]), x.T @ y)  # type: ignore[return-value]

    def _similar(self, item_idx: int) -> npt.NDArray[np.float32]:
        norms = np.linalg.norm(self._item_emb, axis=1) + 1e-9
        return (self._item_emb @ self._item_emb[item_idx]) / (norms * norms[item_idx])  # type: ignore[no-any-return]

    def _state(self) -> dict[str, npt.NDArray[np.generic]]:
        return {
            "user_emb": self._user_emb,
            "user_bias": self._user_bias,
            "item_emb": self._item_emb,
            "item_bias": self._item_bias,
            **({"fold_map": self._fold_map} if self._fold_map is not None else {}),
        }

    def _load_state(self, arrays: dict[str, npt.NDArray[np.generic]]) -> None:
        self._user_emb = arrays["user_emb"].astype(np.float32)
        self._user_bias = arrays["user_bias"].astype(np.float32)
        self._item_emb = column_major(arrays["item_emb"])
        self._item_bias = arrays["item_bias"].astype(np.float32)
        self._fold_map = arrays["fold_map"].astype(np.float64) if "fold_map" in arrays else None
        self._gram = None
