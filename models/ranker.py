"""The neural ranker: a small PyTorch MLP that re-scores the candidate union.

It is the second stage of the two-stage recommender. Each row it scores is one
(profile, candidate title) pair described by a fixed list of numeric columns —
Feast features of the profile and the title plus, per candidate source, the
source's score, reciprocal rank and a hit flag (see ``features.ranking_frame``).

Training is on lists built from labelled rows: every positive row of a query
(a profile at one point in time) is put in a list with ``n_negatives`` negatives
sampled from the same query, and the loss is either pairwise BPR
(``-log σ(s⁺ - s⁻)``) or listwise softmax cross-entropy over the list. Both are
cheap on CPU and only need scores to be comparable within a query, which is all
serving needs.

Saved without pickling code: ``ranker.json`` (hyper-parameters, feature names,
normalisation statistics) and ``weights.npz`` (the state dict as arrays).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import numpy.typing as npt

from models.base import Ranker
from models.ranker_lists import build_lists

logger = logging.getLogger(__name__)

CONFIG_FILE = "ranker.json"
WEIGHTS_FILE = "weights.npz"
FORMAT = 1

Loss = Literal["bpr", "softmax"]


class NeuralRanker(Ranker):
    """MLP ranker over standardised numeric features.

    Args:
        hidden: sizes of the hidden layers.
        loss: ``"bpr"`` (pairwise) or ``"softmax"`` (listwise).
        n_negatives: negatives sampled per positive, from the same query.
        epochs: passes over the lists.
        batch_size: lists per optimiser step.
        lr: Adam learning rate.
        weight_decay: L2 penalty of Adam.
        dropout: dropout after each hidden layer (training only). 0.3 by default: on the
            fold-in protocol (``bench/bench_foldin.py``, four ranker seeds per user draw) it raised
            the champion's ndcg@10 on ml-latest-small by 3 % refit and 4.5 % folded in, and
            on MovieTweetings by 2 % refit (folded in: unchanged), and it narrowed the spread
            between ranker seeds.
        seed: seeds negative sampling, initialisation and batch order.
    """

    name: ClassVar[str] = "neural-ranker"

    def __init__(
        self,
        hidden: Sequence[int] = (64, 32),
        loss: Loss = "softmax",
        n_negatives: int = 8,
        epochs: int = 3,
        batch_size: int = 512,
        lr: float = 3e-3,
        weight_decay: float = 1e-5,
        dropout: float = 0.3,
        seed: int = 42,
    ) -> None:
        if loss not in ("bpr", "softmax"):
            raise ValueError(f"loss must be 'bpr' or 'softmax', got {loss!r}")
        if n_negatives < 1:
            raise ValueError(f"n_negatives must be at least 1, got {n_negatives}")
        if epochs < 1 or batch_size < 1:
            raise ValueError(f"epochs and batch_size must be at least 1, got {epochs} and {batch_size}")
        self.hidden = tuple(int(h) for h in hidden)
        self.loss: Loss = loss
        self.n_negatives = int(n_negatives)
        self.epochs = int(epochs)
        self.batch_size = int(batch_size)
        self.lr = float(lr)
        self.weight_decay = float(weight_decay)
        self.dropout = float(dropout)
        self.seed = int(seed)
        self.feature_names: list[str] = []
        self.mean: npt.NDArray[np.float32] = np.zeros(0, np.float32)
        self.std: npt.NDArray[np.float32] = np.ones(0, np.float32)
        self.history: list[float] = []
        self._net: Any = None
        #: (the network, its layers in numpy) once loaded from disk: ``score``'s fast path.
        self._frozen: tuple[Any, list[tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]] | None] | None = None

    # ------------------------------------------------------------------ config
    def params(self) -> dict[str, Any]:
        """Hyper-parameters, as logged to MLflow and written to ``ranker.json``."""
        return {
            "hidden": list(self.hidden),
            "loss": self.loss,
            "n_negatives": self.n_negatives,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "lr": self.lr,
            "weight_decay": self.weight_decay,
            "dropout": self.dropout,
            "seed": self.seed,
        }

    def _build(self, n_features: int) -> Any:
        import torch
        from torch import nn

        torch.manual_seed(self.seed)
        layers: list[nn.Module] = []
        width = n_features
        for size in self.hidden:
            layers += [nn.Linear(width, size), nn.ReLU()]
            if self.dropout > 0:
                layers.append(nn.Dropout(self.dropout))
            width = size
        layers.append(nn.Linear(width, 1))
        return nn.Sequential(*layers)

    # ------------------------------------------------------------------- train
    def fit(  # type: ignore[override]
        self,
        features: npt.NDArray[np.float32],
        groups: npt.NDArray[np.int64],
        labels: npt.NDArray[np.float32],
        feature_names: Sequence[str],
        *,
        on_epoch: Callable[[int, float], None] | None = None,
    ) -> NeuralRanker:
        """Learn to put each query's positives above its negatives.

        Args:
            features: shape (n, d) float32, one row per (query, candidate).
            groups: shape (n,) int64, the query of each row (rows of a query need not be adjacent).
            labels: shape (n,) float32, > 0 for a positive (watched next), 0 for a negative.
            feature_names: the d column names, in order; saved so serving builds the same columns.
            on_epoch: called with (epoch, mean loss) after each epoch (progress bars, MLflow).

        Raises:
            ValueError: mismatched shapes, non-finite values, or no query with both a
                positive and a negative.
        """
        xn, index = self.prepare(features, groups, labels, feature_names)
        net = self._build(xn.shape[1])
        self._net = self.train_epochs(net, xn, index, on_epoch=on_epoch)
        return self

    def prepare(
        self,
        features: npt.NDArray[np.float32],
        groups: npt.NDArray[np.int64],
        labels: npt.NDArray[np.float32],
        feature_names: Sequence[str],
    ) -> tuple[Any, Any]:
        """Check the inputs, fix the normalisation and build the training lists (``fit``'s arguments).

        Deterministic given the seed, so every process of a distributed fit
        (``models.ranker_distributed``) that prepares the same arrays holds the same
        lists and statistics; only the lists each process trains on differ.

        Returns:
            The standardised features, a float32 tensor of shape (n, d), and the lists,
            an int64 tensor of shape (m, 1 + n_negatives) whose column 0 is the positive row.
        """
        import torch

        x = np.asarray(features, dtype=np.float32)
        if x.ndim != 2:
            raise ValueError(f"features must be a 2-D array (n, d), got shape {x.shape}")
        if len(feature_names) != x.shape[1]:
            raise ValueError(f"{len(feature_names)} feature names for {x.shape[1]} feature columns")
        if not (len(groups) == len(labels) == len(x)):
            raise ValueError("features, groups and labels must have the same number of rows")
        if not np.isfinite(x).all():
            raise ValueError("features contain NaN or infinite values; fill missing features before fitting")
        rng = np.random.default_rng(self.seed)
        lists = build_lists(np.asarray(groups), np.asarray(labels) > 0, self.n_negatives, rng)
        if len(lists) == 0:
            raise ValueError("no query has both a positive and a negative candidate; nothing to learn from")

        self.feature_names = list(feature_names)
        self.mean = x.mean(axis=0).astype(np.float32)
        std = x.std(axis=0).astype(np.float32)
        self.std = np.where(std > 1e-6, std, 1.0).astype(np.float32)
        return torch.from_numpy((x - self.mean) / self.std), torch.from_numpy(lists)

    def train_epochs(
        self,
        model: Any,
        xn: Any,
        index: Any,
        *,
        on_epoch: Callable[[int, float], None] | None = None,
        batch_size: int | None = None,
        shard: Callable[[Any, int], Any] | None = None,
        epoch_loss: Callable[[float, int], float] | None = None,
    ) -> Any:
        """The optimisation loop: ``epochs`` passes over the lists in a seeded order.

        One process runs it with the defaults. A distributed fit passes a DDP-wrapped
        ``model``, the per-process ``batch_size``, a ``shard`` that keeps this process's
        part of each epoch's order and an ``epoch_loss`` that averages the loss over
        processes, so every process draws the same order from the same seed and the
        processes' batches together are the single-process batches.

        Args:
            model: the network (``_build``), or a wrapper that forwards to it.
            xn: standardised features, shape (n, d) float32 (``prepare``).
            index: the lists, shape (m, 1 + n_negatives) int64 (``prepare``).
            on_epoch: called with (epoch, mean loss) after each epoch.
            batch_size: lists per optimiser step in this process (default ``self.batch_size``).
            shard: (epoch's order of all lists, epoch) → the positions this process trains on.
            epoch_loss: (sum of this process's batch losses, its batches) → the epoch's mean loss.

        Returns:
            The network, in eval mode (unwrapped when ``model`` wraps it in ``.module``).
        """
        import torch

        step = self.batch_size if batch_size is None else batch_size
        optimiser = torch.optim.Adam(model.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        generator = torch.Generator().manual_seed(self.seed)
        self.history = []
        model.train()
        for epoch in range(self.epochs):
            order = torch.randperm(len(index), generator=generator)
            if shard is not None:
                order = shard(order, epoch)
            total, batches = 0.0, 0
            for start in range(0, len(order), step):
                batch = index[order[start : start + step]]
                scores = model(xn[batch.reshape(-1)]).reshape(batch.shape)
                loss = self._loss(scores)
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                total += float(loss.detach())
                batches += 1
            mean_loss = total / max(batches, 1) if epoch_loss is None else epoch_loss(total, batches)
            self.history.append(mean_loss)
            logger.info("ranker epoch %d/%d loss %.4f", epoch + 1, self.epochs, mean_loss)
            if on_epoch is not None:
                on_epoch(epoch, mean_loss)
        model.eval()
        return getattr(model, "module", model)

    def _loss(self, scores: Any) -> Any:
        import torch
        from torch.nn import functional

        if self.loss == "bpr":
            return -functional.logsigmoid(scores[:, :1] - scores[:, 1:]).mean()
        target = torch.zeros(scores.shape[0], dtype=torch.long)
        return functional.cross_entropy(scores, target)

    # ------------------------------------------------------------------- score
    def score(self, features: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Scores for candidate rows: ``features`` shape (n, d) float32 → shape (n,) float32.

        Raises:
            RuntimeError: the ranker was neither fitted nor loaded.
            ValueError: the number of columns differs from ``feature_names``.
        """
        import torch

        if self._net is None:
            raise RuntimeError("the ranker is not fitted; call fit() or NeuralRanker.load() first")
        x = np.asarray(features, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != len(self.feature_names):
            raise ValueError(
                f"expected features of shape (n, {len(self.feature_names)}) in the order {self.feature_names}, "
                f"got {x.shape}"
            )
        if len(x) == 0:
            return np.zeros(0, np.float32)
        x = (x - self.mean) / self.std
        np.copyto(x, 0.0, where=~np.isfinite(x))  # nan_to_num(nan=0, ±inf=0) in place: serving scores per request
        layers = self._dense_layers()
        if layers is not None:
            h = x.astype(np.float32, copy=False)
            for i, (weight_t, bias) in enumerate(layers):
                h = h @ weight_t + bias
                if i < len(layers) - 1:
                    np.maximum(h, 0.0, out=h)  # ReLU; dropout is the identity at inference
            return h.reshape(-1).astype(np.float32, copy=False)
        with torch.inference_mode():
            out = self._net(torch.from_numpy(x.astype(np.float32))).reshape(-1)
        return out.numpy().astype(np.float32)

    def _dense_layers(self) -> list[tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]] | None:
        """The loaded network as numpy (weightᵀ, bias) pairs, for scoring one request's rows.

        Serving scores ~100-300 rows per request; torch's per-call dispatch through
        ``nn.Sequential`` cost more than the arithmetic (py-spy: the largest single
        share of a cold request). A loaded ranker is frozen, so its layers are copied
        once; the same Linear/ReLU stack in numpy gives the same scores to float32
        precision (``tests/test_ranker_fast_path.py``). ``None`` (torch path) for a
        ranker being fitted, or a network with any other layer.
        """
        cached = self._frozen
        if cached is None or cached[0] is not self._net:
            return None
        return cached[1]

    # -------------------------------------------------------------- save/load
    def save(self, path: Path) -> None:
        """Write ``ranker.json`` and ``weights.npz`` under folder ``path`` (no pickled code)."""
        if self._net is None:
            raise RuntimeError("cannot save an unfitted ranker")
        path.mkdir(parents=True, exist_ok=True)
        config = {
            "format": FORMAT,
            "model": self.name,
            "params": self.params(),
            "feature_names": self.feature_names,
            "mean": self.mean.tolist(),
            "std": self.std.tolist(),
            "history": self.history,
        }
        (path / CONFIG_FILE).write_text(json.dumps(config, indent=2))
        state = {k: v.detach().cpu().numpy() for k, v in self._net.state_dict().items()}
        np.savez(path / WEIGHTS_FILE, **state)  # type: ignore[arg-type]

    @classmethod
    def load(cls, path: Path) -> NeuralRanker:
        """Read a ranker written by ``save``."""
        import torch

        config_path = path / CONFIG_FILE
        if not config_path.exists():
            raise FileNotFoundError(f"no {CONFIG_FILE} under {path}; is this a saved NeuralRanker?")
        config = json.loads(config_path.read_text())
        if config.get("format") != FORMAT:
            raise ValueError(f"{config_path}: ranker format {config.get('format')!r}, expected {FORMAT}")
        ranker = cls(**config["params"])
        ranker.feature_names = list(config["feature_names"])
        ranker.mean = np.asarray(config["mean"], np.float32)
        ranker.std = np.asarray(config["std"], np.float32)
        ranker.history = list(config.get("history", []))
        net = ranker._build(len(ranker.feature_names))
        with np.load(path / WEIGHTS_FILE, allow_pickle=False) as weights:
            net.load_state_dict({k: torch.from_numpy(weights[k]) for k in weights.files})
        net.eval()
        ranker._net = net
        ranker._frozen = (net, _numpy_layers(net))
        return ranker


def _numpy_layers(net: Any) -> list[tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]] | None:
    """(weightᵀ, bias) per Linear layer of a ``Linear, ReLU[, Dropout], ..., Linear`` stack; else ``None``."""
    from torch import nn

    layers: list[tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]] = []
    modules = list(net)
    for i, module in enumerate(modules):
        if isinstance(module, nn.Linear):
            # The activation between Linear layers must be exactly one ReLU (dropout aside).
            following = [m for m in modules[i + 1 :] if not isinstance(m, nn.Dropout)]
            if following and not (
                len(following) >= 2 and isinstance(following[0], nn.ReLU) and isinstance(following[1], nn.Linear)
            ):
                return None
            weight = module.weight.detach().cpu().numpy().astype(np.float32)
            bias = module.bias.detach().cpu().numpy().astype(np.float32)
            layers.append((np.ascontiguousarray(weight.T), bias))
        elif not isinstance(module, nn.ReLU | nn.Dropout):
            return None
    return layers or None
