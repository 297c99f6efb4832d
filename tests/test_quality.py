"""Quality machinery: the blend's weight search, the champion rule, the runner-up, typed bundle metadata."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.blend import Blend, learn_weights, ndcg_at_10
from models.bundle import BundleMetadata, BundleMetadataError, ModelBundle
from models.registry import model_class, model_names
from training.evaluation import BASELINES, champion_rule, member_params, order_models
from training.pipeline import RANKED, choose_challenger, choose_served
from training.tuning import search_space


def test_blend_weights_are_never_worse_than_the_best_member_on_validation() -> None:
    rng = np.random.default_rng(0)
    relevant = [set(rng.choice(50, 3, replace=False).tolist()) for _ in range(40)]
    truth = np.zeros((40, 50), np.float32)
    for k, rel in enumerate(relevant):
        truth[k, list(rel)] = 1.0
    # Two noisy views of the truth: each alone is mediocre, together better.
    a = (truth + rng.normal(scale=0.8, size=truth.shape)).astype(np.float32)
    b = (truth + rng.normal(scale=0.8, size=truth.shape)).astype(np.float32)
    noise = rng.normal(size=truth.shape).astype(np.float32)
    weights, alone, blended = learn_weights({"a": a, "b": b, "noise": noise}, relevant)
    assert blended >= max(alone.values())
    assert blended > max(alone["a"], alone["b"])  # the second view adds signal
    assert weights["a"] > 0 and weights["b"] > 0
    mixed = sum(w * s for w, s in zip(weights.values(), (a, b, noise), strict=True))
    assert ndcg_at_10(np.asarray(mixed, np.float32), relevant) == pytest.approx(blended)


def test_a_member_adding_only_noise_gets_weight_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    import models.blend as blend_module

    rng = np.random.default_rng(0)
    relevant = [set(rng.choice(100, 3, replace=False).tolist()) for _ in range(200)]
    truth = np.zeros((200, 100), np.float32)
    for k, rel in enumerate(relevant):
        truth[k, list(rel)] = 1.0
    signal = (truth + rng.normal(scale=0.8, size=truth.shape)).astype(np.float32)
    members = {"signal": signal, **{f"noise{j}": rng.random(truth.shape).astype(np.float32) for j in range(4)}}
    weights, alone, blended = learn_weights(members, relevant)
    assert weights == {"signal": 1.0, "noise0": 0.0, "noise1": 0.0, "noise2": 0.0, "noise3": 0.0}
    assert blended == pytest.approx(alone["signal"])
    # The test has teeth: keeping any strict validation gain (the rule before the noise test) takes noise in.
    monkeypatch.setattr(blend_module, "NOISE_Z", 0.0)
    monkeypatch.setattr(blend_module, "MIN_RELATIVE_GAIN", 0.0)
    greedy, _, lucky = learn_weights(members, relevant)
    assert any(greedy[f"noise{j}"] > 0 for j in range(4)) and lucky > blended


def test_the_champion_rule_never_picks_a_baseline_and_reports_the_ratio() -> None:
    results = {"recency_ease": {"ndcg@10": 0.2}, "ease": {"ndcg@10": 0.1}, "seqknn": {"ndcg@10": 0.19}}
    rule = champion_rule(results)
    assert rule == {"best": "seqknn", "best_baseline": "recency_ease", "ratio": 0.95}
    assert champion_rule({"ease": {"ndcg@10": 0.1}})["best"] is None


def test_training_serves_by_the_same_rule_and_registers_a_different_runner_up() -> None:
    holdout = {
        "popularity": {"ndcg@10": 0.30},
        "seqknn": {"ndcg@10": 0.20},
        "als": {"ndcg@10": 0.15},
        RANKED: {"ndcg@10": 0.25},
    }
    served, used, _ = choose_served(holdout, ["popularity", "seqknn", "als"], ranker_trained=True)
    assert (served, used) == (RANKED, True)  # popularity is a baseline: the number to beat, not the answer
    assert choose_challenger(holdout, ["popularity", "seqknn", "als"], True, served) == "seqknn"
    served, used, _ = choose_served(holdout, ["popularity", "seqknn", "als"], ranker_trained=False)
    assert served == "seqknn" and choose_challenger(holdout, ["popularity", "seqknn", "als"], False, served) == "als"


def test_a_model_declares_its_tuning_space_and_similar_priority_on_its_class() -> None:
    assert search_space("recency_ease") == {"lam": [200.0, 500.0, 1000.0], "half_life": [2.0, 3.0, 5.0]}
    assert search_space("blend") == {}
    priority = {n: int(getattr(model_class(n), "similar_priority", 0)) for n in ("item_knn", "als", "popularity")}
    assert priority["item_knn"] < priority["als"] < priority["popularity"]
    assert order_models(["blend", "seqknn", "ease"])[-1] == "blend"
    results = {"seqknn": {"params": {"knn_weight": 0.5}}, "ease": {"params": {"lam": 100.0}}}
    assert member_params("blend", results) == {"member_params": {"seqknn": {"knn_weight": 0.5}, "ease": {"lam": 100.0}}}
    assert set(BASELINES) <= set(model_names())


def test_bundle_metadata_is_checked_on_save_and_load(tmp_path: Path) -> None:
    meta = BundleMetadata.from_dict({"primary_candidate": "seqknn", "ranker_used": False, "custom": 1})
    assert meta.primary_candidate == "seqknn" and meta.extra == {"custom": 1}
    assert meta.to_dict()["metadata_version"] == BundleMetadata.VERSION
    with pytest.raises(BundleMetadataError, match="ranker_used"):
        ModelBundle(candidates={}, metadata={"ranker_used": "yes"}).save(tmp_path / "bad")
    ModelBundle(candidates={}, metadata={"candidate_k": 50}).save(tmp_path / "ok")
    manifest = tmp_path / "ok" / "bundle.json"
    manifest.write_text(manifest.read_text().replace('"metadata_version": 1', '"metadata_version": 99'))
    with pytest.raises(BundleMetadataError, match="newer"):
        ModelBundle.load(tmp_path / "ok")


def test_blend_learns_weights_inside_fit_and_round_trips(tmp_path: Path) -> None:
    from models.base import Interactions

    rng = np.random.default_rng(1)
    users, items, ts = [], [], []
    for u in range(80):
        start = int(rng.integers(0, 30))
        for k in range(12):  # each user walks a chain of titles: the next one follows the last
            users.append(f"u{u}")
            items.append(f"i{(start + k) % 40}")
            ts.append(1_600_000_000 + u * 10_000 + k * 60)
    data = Interactions(np.array(users), np.array(items), np.array(ts, np.int64), np.ones(len(users), np.float32))
    blend = Blend(member_params={"ease": {"lam": 10.0}, "recency_ease": {"lam": 10.0}}).fit(data)
    assert blend.weights is not None and blend.validation["blend"] >= max(blend.validation["members"].values())
    blend.save(tmp_path / "b")
    again = Blend.load(tmp_path / "b")
    assert again.recommend("u3", 5).item_ids.tolist() == blend.recommend("u3", 5).item_ids.tolist()


def test_dampening_reaches_the_reference_coverage_without_losing_ndcg() -> None:
    from models.blend import MIN_RELATIVE_GAIN, choose_dampening, coverage_at_10, dampen

    rng = np.random.default_rng(0)
    n_users, n_items = 300, 400
    counts = np.floor(2000.0 / np.arange(1, n_items + 1)).astype(np.float64)  # power-law popularity
    relevant = [set(rng.choice(n_items, 3, replace=False).tolist()) for _ in range(n_users)]
    # Scores: a popularity term shared by everyone (crowds the top 10 with the same titles), the truth
    # for a few users, and a personal taste term that carries no signal.
    scores = np.tile(np.log1p(counts) / np.log1p(counts).max(), (n_users, 1)) + 0.3 * rng.random((n_users, n_items))
    for k, rel in enumerate(relevant[:30]):
        scores[k, list(rel)] += 1.0
    scores = scores.astype(np.float32)
    seen_user, seen_item = 0, int(np.argmax(scores[0]))
    scores[seen_user, seen_item] = -np.inf
    undamped = coverage_at_10(scores)
    exponent, curve = choose_dampening(scores, relevant, counts, reference_coverage=2 * undamped)
    assert exponent > 0
    chosen = dampen(scores, counts, exponent)
    assert coverage_at_10(chosen) >= 2 * undamped
    assert ndcg_at_10(chosen, relevant) >= ndcg_at_10(scores, relevant) * (1 - MIN_RELATIVE_GAIN)
    assert chosen[seen_user, seen_item] == -np.inf
    assert curve[0]["exponent"] == 0.0
    # Already as diverse as the reference: nothing changes.
    assert choose_dampening(scores, relevant, counts, reference_coverage=undamped)[0] == 0.0


def test_dampening_never_costs_more_than_the_noise_share_of_ndcg() -> None:
    from models.blend import MIN_RELATIVE_GAIN, choose_dampening, dampen

    rng = np.random.default_rng(1)
    n_users, n_items = 200, 300
    counts = np.floor(1000.0 / np.arange(1, n_items + 1)).astype(np.float64)
    # Here the popular titles *are* what users watch next: any dampening loses ndcg.
    relevant = [set(rng.choice(10, 3, replace=False).tolist()) for _ in range(n_users)]
    scores = (np.log1p(counts)[None, :] + 0.01 * rng.random((n_users, n_items))).astype(np.float32)
    exponent, curve = choose_dampening(scores, relevant, counts, reference_coverage=1.0)
    base = curve[0]["ndcg@10"]
    assert ndcg_at_10(dampen(scores, counts, exponent), relevant) >= base * (1 - MIN_RELATIVE_GAIN) - 1e-9
    assert any(c["ndcg@10"] < base * (1 - MIN_RELATIVE_GAIN) for c in curve)  # the rule had something to refuse


def test_the_dampening_rule_allows_only_noise_sized_losses_and_stops_at_the_reference() -> None:
    from models.blend import pick_dampening

    curve = [
        {"exponent": 0.0, "ndcg@10": 0.2000, "coverage@10": 0.10},
        {"exponent": 0.01, "ndcg@10": 0.1995, "coverage@10": 0.12},
        {"exponent": 0.02, "ndcg@10": 0.1991, "coverage@10": 0.15},
        {"exponent": 0.05, "ndcg@10": 0.1800, "coverage@10": 0.30},  # more coverage, a real loss: refused
    ]
    assert pick_dampening(curve, 0.11) == 0.01  # the smallest exponent reaching the reference
    assert pick_dampening(curve, 0.25) == 0.02  # none allowed reaches it: the most coverage allowed
    assert pick_dampening(curve, None) == 0.02
    assert pick_dampening(curve, 0.05) == 0.0  # already as diverse as the reference
    with pytest.raises(ValueError, match="exponent 0"):
        pick_dampening(curve[1:], 0.11)
