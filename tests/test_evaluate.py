"""``marquee evaluate`` and ``training.evaluation`` on a tiny MovieLens folder written in code."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import require_shared_data
from typer.testing import CliRunner

from core.errors import InvalidInputError
from marquee.cli import app, main
from training.evaluation import BASELINES, evaluate_model, evaluate_models, title_features
from training.protocol import temporal_user_split, validation_split

GENRES = ["Horror", "Comedy", "Drama"]


def write_movielens(folder: Path, seed: int = 0) -> Path:
    """A ml-latest-small-shaped folder: 3 taste groups, each watching its own genre's films in order."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    movies = [(g * 20 + k + 1, f"Film {g}-{k} (19{80 + k})", GENRES[g]) for g in range(3) for k in range(20)]
    pd.DataFrame(movies, columns=["movieId", "title", "genres"]).to_csv(folder / "movies.csv", index=False)
    rows = []
    for user in range(1, 46):
        group = user % 3
        watched = rng.permutation(20)[:12]
        for step, k in enumerate(watched):
            rows.append((user, group * 20 + int(k) + 1, float(rng.integers(1, 6)), 1_000_000 + user * 1000 + step))
    ratings = pd.DataFrame(rows, columns=["userId", "movieId", "rating", "timestamp"])
    ratings.to_csv(folder / "ratings.csv", index=False)
    return folder


#: ml-100k's ``u.item`` genre flags, in order (its ``u.genre``).
ML100K_GENRES = ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary"]
ML100K_GENRES += ["Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller"]
ML100K_GENRES += ["War", "Western"]


def rewrite_as_ml100k(csv_folder: Path, folder: Path) -> Path:
    """The same ratings and movies as ml-100k: tab-separated ``u.data``, pipe-separated latin-1 ``u.item``."""
    ratings = pd.read_csv(csv_folder / "ratings.csv")
    movies = pd.read_csv(csv_folder / "movies.csv")
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f"{u}\t{i}\t{r:g}\t{t}\n" for u, i, r, t in ratings.itertuples(index=False)]
    (folder / "u.data").write_text("".join(lines), encoding="ascii")
    items = []
    for movie, title, genres in movies.itertuples(index=False):
        flags = [int(g in genres.split("|")) for g in ML100K_GENRES]
        flags[0] = int(not any(flags))
        items.append(f"{movie}|{title}|01-Jan-1995||http://example.invalid|{'|'.join(map(str, flags))}\n")
    (folder / "u.item").write_text("".join(items), encoding="latin-1")
    return folder


def rewrite_as_ml1m(csv_folder: Path, folder: Path) -> Path:
    """The same ratings and movies in the ml-1m layout: ``::``-separated latin-1 ``ratings.dat`` and ``movies.dat``."""
    ratings = pd.read_csv(csv_folder / "ratings.csv")
    movies = pd.read_csv(csv_folder / "movies.csv")
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f"{u}::{i}::{r:g}::{t}\n" for u, i, r, t in ratings.itertuples(index=False)]
    (folder / "ratings.dat").write_text("".join(lines), encoding="latin-1")
    items = [f"{m}::{title}::{genres}\n" for m, title, genres in movies.itertuples(index=False)]
    (folder / "movies.dat").write_text("".join(items), encoding="latin-1")
    return folder


def run_cli(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    """``marquee <argv>`` through the real entry point: (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["marquee", *argv])
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_evaluate_command_prints_a_table_and_writes_the_report(tmp_path: Path) -> None:
    data = write_movielens(tmp_path / "ml-tiny")
    out = tmp_path / "report.json"
    result = CliRunner().invoke(
        app,
        ["evaluate", str(data), "--format", "movielens", "--models", "seqknn,item_knn", "--no-tune", "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert "| seqknn |" in result.output and "| recency_ease (baseline) |" in result.output
    report = json.loads(out.read_text())
    assert report["protocol"] == "temporal-user-80-20"
    assert set(report["models"]) == {"popularity", "ease", "recency_ease", "seqknn", "item_knn"}
    for metrics in report["models"].values():
        assert {"ndcg@10", "recall@20", "coverage@10", "fit_seconds"} <= set(metrics)
        assert 0.0 <= metrics["ndcg@10"] <= 1.0
    # Three disjoint taste groups: any personalised model must beat popularity clearly.
    assert report["models"]["seqknn"]["ndcg@10"] > report["models"]["popularity"]["ndcg@10"] + 0.1


def test_evaluate_rejects_unknown_models_and_formats(tmp_path: Path) -> None:
    data = write_movielens(tmp_path / "ml-tiny")
    runner = CliRunner()
    bad_model = runner.invoke(app, ["evaluate", str(data), "--models", "nope"])
    assert bad_model.exit_code != 0
    assert isinstance(bad_model.exception, InvalidInputError)
    assert "unknown model(s) nope" in str(bad_model.exception) and "seqknn" in str(bad_model.exception)
    bad_format = runner.invoke(app, ["evaluate", str(data), "--format", "csv"])
    assert isinstance(bad_format.exception, InvalidInputError)
    assert "movielens" in str(bad_format.exception)


def test_evaluation_is_reproducible_with_a_seed(tmp_path: Path) -> None:
    data = write_movielens(tmp_path / "ml-tiny")
    ratings = pd.read_csv(data / "ratings.csv").rename(
        columns={"userId": "user_id", "movieId": "item_id", "timestamp": "ts"}
    )
    first = evaluate_models(ratings, ["als"], tune=False, seed=3, progress=False)
    second = evaluate_models(ratings, ["als"], tune=False, seed=3, progress=False)
    assert first["models"]["als"]["ndcg@10"] == second["models"]["als"]["ndcg@10"]


def test_tuning_looks_at_validation_only(tmp_path: Path) -> None:
    """Tuning never sees test: changing the test part of the data leaves the chosen parameters alone."""
    data = write_movielens(tmp_path / "ml-tiny")
    ratings = pd.read_csv(data / "ratings.csv").rename(
        columns={"userId": "user_id", "movieId": "item_id", "timestamp": "ts"}
    )
    split = temporal_user_split(ratings)
    shuffled = split.test.assign(item_id=np.random.default_rng(0).permutation(split.test["item_id"].to_numpy()))
    other = type(split)(train=split.train, test=shuffled)
    assert evaluate_model("item_knn", split)["params"] == evaluate_model("item_knn", other)["params"]


def test_title_features_come_from_the_titles_table() -> None:
    titles = pd.DataFrame(
        {"title_id": ["t1"], "genres": [["Drama"]], "release_year": [1994], "maturity_level": [2], "tags": [["heist"]]}
    )
    assert title_features(titles) == {"t1": ["genre:Drama", "maturity:2", "decade:1990", "tag:heist"]}


@pytest.mark.slow
def test_seqknn_beats_the_recency_ease_figure_on_ml_latest_small() -> None:
    """One real-data run (defaults, no tuning): the sequence model clears recency-weighted EASE's 0.1458."""
    path = require_shared_data("ml-latest-small/ratings.csv")
    ratings = pd.read_csv(path).rename(columns={"userId": "user_id", "movieId": "item_id", "timestamp": "ts"})
    split = temporal_user_split(ratings)
    assert split.describe()["train_interactions"] == 80_419
    result = evaluate_model("seqknn", split, tune=False)
    assert result["ndcg@10"] >= 0.155, result


def test_evaluate_on_the_workspace_lake_leaves_it_untouched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from core.lake import Lake
    from core.settings import Settings
    from features.ingest import load_dataset

    home = tmp_path / "ws"
    monkeypatch.setenv("MARQUEE_HOME", str(home))
    settings = Settings()
    settings.workspace.ensure()
    lake = Lake(settings.workspace.lake_dir)
    load_dataset("movielens", write_movielens(tmp_path / "ml-tiny"), lake)
    before = {p: p.stat().st_mtime_ns for p in settings.workspace.lake_dir.rglob("*") if p.is_file()}
    result = CliRunner().invoke(app, ["evaluate", ".", "--format", "lake", "--models", "seqknn", "--no-tune"])
    assert result.exit_code == 0, result.output
    assert "| seqknn |" in result.output
    after = {p: p.stat().st_mtime_ns for p in settings.workspace.lake_dir.rglob("*") if p.is_file()}
    assert after == before


def test_evaluate_on_an_empty_lake_says_how_to_fix_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARQUEE_HOME", str(tmp_path / "empty"))
    result = CliRunner().invoke(app, ["evaluate", ".", "--format", "lake"])
    assert isinstance(result.exception, InvalidInputError)
    assert "no watch events" in str(result.exception)


def test_every_movielens_layout_gives_the_same_numbers(tmp_path: Path) -> None:
    """ml-latest (CSV), ml-100k and ml-1m files holding the same ratings evaluate identically."""
    csv_folder = write_movielens(tmp_path / "ml-latest-small")
    folders = [
        csv_folder,
        rewrite_as_ml100k(csv_folder, tmp_path / "ml-100k"),
        rewrite_as_ml1m(csv_folder, tmp_path / "ml-1m"),
    ]
    reports = []
    for folder in folders:
        out = tmp_path / f"{folder.name}.json"
        argv = ["evaluate", str(folder), "--models", "seqknn,item_knn", "--no-tune", "--out", str(out)]
        result = CliRunner().invoke(app, argv)
        assert result.exit_code == 0, result.output
        reports.append(json.loads(out.read_text()))
    assert [r["dataset"] for r in reports] == ["movielens:ml-latest-small", "movielens:ml-100k", "movielens:ml-1m"]
    timing = {"fit_seconds", "tuning_seconds"}
    numbers = [
        (r["split"], {name: {k: v for k, v in m.items() if k not in timing} for name, m in r["models"].items()})
        for r in reports
    ]
    assert numbers[0] == numbers[1] == numbers[2]
    assert reports[0]["models"]["seqknn"]["ndcg@10"] > reports[0]["models"]["popularity"]["ndcg@10"] + 0.1


def test_a_shared_validation_split_changes_nothing(tmp_path: Path) -> None:
    ratings = pd.read_csv(write_movielens(tmp_path / "ml-tiny") / "ratings.csv").rename(
        columns={"userId": "user_id", "movieId": "item_id", "timestamp": "ts"}
    )
    split = temporal_user_split(ratings)
    alone = evaluate_model("item_knn", split)
    shared = evaluate_model("item_knn", split, validation=validation_split(split.train))
    for result in (alone, shared):
        del result["fit_seconds"], result["tuning_seconds"]
    assert alone == shared


def test_ease_is_skipped_with_the_reason_when_the_catalog_is_too_large(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import models.ease

    monkeypatch.setattr(models.ease, "MAX_ITEMS", 10)
    data = write_movielens(tmp_path / "ml-tiny")
    out = tmp_path / "report.json"
    code, stdout, err = run_cli(
        ["evaluate", str(data), "--models", "seqknn", "--no-tune", "--out", str(out)], monkeypatch, capsys
    )
    assert code == 0, err
    report = json.loads(out.read_text())
    assert set(report["skipped"]) == {"ease", "recency_ease"}
    assert "60 items is more than its limit of 10" in report["skipped"]["ease"]
    assert set(report["models"]) == {"popularity", "seqknn"}
    assert report["best_baseline"] == "popularity" and report["best"] == "seqknn"
    assert "skipped ease: EASE needs a dense items × items matrix" in stdout


def test_a_catalog_too_large_for_ease_is_refused_before_any_fit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import models.ease
    import training.evaluation
    from models.ease import CatalogTooLargeError

    ratings = pd.read_csv(write_movielens(tmp_path / "ml-tiny") / "ratings.csv").rename(
        columns={"userId": "user_id", "movieId": "item_id", "timestamp": "ts"}
    )
    split = temporal_user_split(ratings)
    monkeypatch.setattr(models.ease, "MAX_ITEMS", 10)

    def no_fit(*args: object, **kwargs: object) -> None:
        raise AssertionError("fitted before the catalog was checked")

    monkeypatch.setattr(training.evaluation, "fit_model", no_fit)
    with pytest.raises(CatalogTooLargeError, match="60 items is more than its limit of 10"):
        evaluate_model("recency_ease", split)


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("missing", "does not exist"),
        ("format", "unknown --format 'grouplens'; use one of: movielens, movietweetings, lake"),
        ("empty", "no MovieLens ratings file found"),
        ("ml1m-line", "ratings.dat, line 3, column 'rating': bad value 'x'"),
        ("ml100k-line", "u.data, line 2: 3 field(s) instead of 4"),
        ("csv-line", "ratings.csv, line 4, column 'timestamp': bad value 'soon'"),
        ("no-ratings", "u.data: has no data lines"),
        ("movietweetings-as-movielens", "a ratings.dat rated 0-10 is MovieTweetings"),
        ("movielens-as-movietweetings", "looks like MovieLens, not MovieTweetings"),
        ("out-is-a-folder", "is a folder; give a file name"),
        ("model", "unknown model(s) nope"),
    ],
)
def test_bad_input_exits_2_with_one_clear_line(
    case: str, expected: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    csv_folder = write_movielens(tmp_path / "ml-latest-small")
    path, extra = tmp_path / case, ["--format", "movielens"]
    if case == "missing":
        pass
    elif case == "format":
        path, extra = csv_folder, ["--format", "grouplens"]
    elif case == "empty":
        path.mkdir()
    elif case == "ml1m-line":
        rewrite_as_ml1m(csv_folder, path)
        lines = (path / "ratings.dat").read_text(encoding="latin-1").splitlines(keepends=True)
        lines[2] = "7::3::x::1000003\n"
        (path / "ratings.dat").write_text("".join(lines), encoding="latin-1")
    elif case == "ml100k-line":
        rewrite_as_ml100k(csv_folder, path)
        lines = (path / "u.data").read_text().splitlines(keepends=True)
        lines[1] = "7\t3\t4\n"
        (path / "u.data").write_text("".join(lines))
    elif case == "csv-line":
        path = csv_folder
        lines = (path / "ratings.csv").read_text().splitlines(keepends=True)
        lines[3] = "7,3,4.0,soon\n"
        (path / "ratings.csv").write_text("".join(lines))
    elif case == "no-ratings":
        rewrite_as_ml100k(csv_folder, path)
        (path / "u.data").write_text("")
    elif case == "movietweetings-as-movielens":
        path.mkdir()
        (path / "ratings.dat").write_text("1::0114709::7::1365029107\n")
        (path / "movies.dat").write_text("0114709::Toy Story (1995)::Animation\n")
    elif case == "movielens-as-movietweetings":
        path, extra = rewrite_as_ml1m(csv_folder, path), ["--format", "movietweetings"]
    elif case == "out-is-a-folder":
        path, extra = csv_folder, ["--out", str(tmp_path)]
    elif case == "model":
        path, extra = csv_folder, ["--models", "seqknn,nope"]
    code, _, err = run_cli(["evaluate", str(path), *extra, "--no-tune"], monkeypatch, capsys)
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert expected in err and "Traceback" not in err


def test_the_ranker_is_evaluated_over_the_union_and_learns_from_validation_only(tmp_path: Path) -> None:
    """The neural ranker gets a row like any model, over every generator of the run, trained without test."""
    ratings = pd.read_csv(write_movielens(tmp_path / "ml-tiny") / "ratings.csv").rename(
        columns={"userId": "user_id", "movieId": "item_id", "timestamp": "ts"}
    )
    report = evaluate_models(ratings, ["seqknn", "neural-ranker"], tune=False, progress=False)
    ranker = report["models"]["neural-ranker"]
    assert ranker["params"]["sources"] == ["popularity", "ease", "recency_ease", "seqknn"]
    assert {"ndcg@10", "recall@20", "coverage@10"} <= set(ranker) and 0.0 < ranker["ndcg@10"] <= 1.0
    # Three disjoint taste groups: the ranked union must beat popularity clearly, as every personalised model does.
    assert ranker["ndcg@10"] > report["models"]["popularity"]["ndcg@10"] + 0.1
    # Test titles replaced by ones never seen in train (the protocol drops them): train, validation and hence
    # the ranker's training rows are unchanged, while the test users and their metrics change.
    split = temporal_user_split(ratings)
    test_rows = set(zip(split.test["user_id"], split.test["item_id"], strict=True))
    held = [
        (str(u), str(i)) in test_rows and u % 2 == 0
        for u, i in zip(ratings["user_id"], ratings["item_id"], strict=True)
    ]
    altered = ratings.assign(
        item_id=[f"unseen-{k}" if h else str(i) for k, (h, i) in enumerate(zip(held, ratings["item_id"], strict=True))]
    )
    other = evaluate_models(altered, ["seqknn", "neural-ranker"], tune=False, progress=False)
    assert other["split"]["test_users"] < report["split"]["test_users"]
    for key in ("training_rows", "positives", "epochs"):
        assert other["models"]["neural-ranker"]["params"][key] == ranker["params"][key]


def test_every_model_is_served_under_recency_eases_coverage_floor(tmp_path: Path) -> None:
    """coverage@10 no worse than recency-EASE's: each non-baseline's test lists are filled up to its titles."""
    ratings = pd.read_csv(write_movielens(tmp_path / "ml-tiny") / "ratings.csv").rename(
        columns={"userId": "user_id", "movieId": "item_id", "timestamp": "ts"}
    )
    report = evaluate_models(ratings, ["seqknn", "time_popularity", "neural-ranker"], tune=False, progress=False)
    models = report["models"]
    reference = models["recency_ease"]
    for name in BASELINES:
        assert "coverage_floor" not in models[name]  # the numbers to beat are scored as they are
    for name in ("seqknn", "time_popularity", "neural-ranker"):
        floor = models[name]["coverage_floor"]
        assert floor["target_titles"] == reference["titles@10"]
        assert floor["titles_after"] == models[name]["titles@10"] >= floor["titles_before"]
        if floor["titles_after"] >= reference["titles@10"]:
            assert models[name]["coverage@10"] >= reference["coverage@10"]
    # Something had to move on this set, or the test would not show the floor at work.
    assert any(models[n]["coverage_floor"]["swaps"] > 0 for n in ("seqknn", "time_popularity", "neural-ranker"))


def test_the_ranker_is_not_a_candidate_model_for_training() -> None:
    from training.candidates import check_models

    with pytest.raises(InvalidInputError, match="neural-ranker is the ranker"):
        check_models(["seqknn", "neural-ranker"])
    assert check_models(["seqknn"]) == ["seqknn"]
