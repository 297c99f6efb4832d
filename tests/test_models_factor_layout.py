"""Item factors kept column by column (``models.scoring.column_major``): the fast layout, the same answers.

Scoring a viewer is ``u @ items.T``; stored by columns, ``items.T`` is row-major and
OpenBLAS takes its faster kernel. These tests pin the layout where a model gets its
factors (fit, load) and check that it changes no list: a row-major copy of the same
model recommends the same titles in the same order, with scores equal to float32
rounding.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest

from models.als import ImplicitALS
from models.base import Interactions
from models.lightfm_hybrid import LightFMHybrid
from models.scoring import ItemScorer, column_major
from tests.test_models_lightfm_foldin import tastes

FACTORS = {ImplicitALS: "_items", LightFMHybrid: "_item_emb"}


def _fit(kind: type[ItemScorer], data: Interactions) -> ItemScorer:
    if kind is ImplicitALS:
        model: ItemScorer = ImplicitALS(factors=16, iterations=8, seed=3)
    else:
        model = LightFMHybrid(no_components=16, epochs=10, seed=1)
    model.fit(data)
    return model


def _row_major_twin(model: ItemScorer) -> ItemScorer:
    twin = copy.deepcopy(model)
    name = FACTORS[type(model)]
    setattr(twin, name, np.ascontiguousarray(getattr(model, name)))
    return twin


def test_column_major_keeps_values_and_shape_and_stores_by_columns() -> None:
    rows = np.arange(12, dtype=np.float64).reshape(4, 3)
    stored = column_major(rows)
    assert stored.dtype == np.float32 and stored.shape == (4, 3)
    assert stored.flags.f_contiguous and stored.T.flags.c_contiguous
    np.testing.assert_array_equal(stored, rows.astype(np.float32))


@pytest.mark.parametrize("kind", [ImplicitALS, LightFMHybrid])
def test_factors_are_column_major_after_fit_and_after_load(kind: type[ItemScorer], tmp_path: Path) -> None:
    model = _fit(kind, tastes(n_users=80, n_items=60))
    assert getattr(model, FACTORS[kind]).flags.f_contiguous
    model.save(tmp_path / "m")
    loaded = kind.load(tmp_path / "m")
    factors = getattr(loaded, FACTORS[kind])
    assert factors.flags.f_contiguous
    np.testing.assert_array_equal(factors, getattr(model, FACTORS[kind]))


@pytest.mark.parametrize("kind", [ImplicitALS, LightFMHybrid])
def test_the_layout_changes_no_list(kind: type[ItemScorer]) -> None:
    data = tastes()
    model = _fit(kind, data)
    twin = _row_major_twin(model)
    assert not getattr(twin, FACTORS[kind]).flags.f_contiguous
    users = sorted(set(data.user_ids.tolist()))
    for user in users:
        history = data.item_ids[data.user_ids == user].tolist()[:8]
        for mine, theirs in (
            (model.recommend("", 20, history=history), twin.recommend("", 20, history=history)),
            (model.recommend(user, 20), twin.recommend(user, 20)),
        ):
            assert mine.item_ids.tolist() == theirs.item_ids.tolist()
            np.testing.assert_allclose(mine.scores, theirs.scores, rtol=1e-5, atol=1e-6)
