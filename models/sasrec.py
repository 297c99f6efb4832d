"""SASRec-style sequential recommender: a small causal transformer over the profile's recent watches.

Kang & McAuley (2018), trained with full softmax cross-entropy over the catalog
(which beats sampled negatives on small catalogs). Sized for CPUs: 50-item
windows, 1–2 blocks, 64 dims, a few epochs. Torch is imported lazily.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from models.history import Histories
from models.scoring import ItemScorer, UserContext

logger = logging.getLogger(__name__)


def _build_network(n_items: int, max_len: int, dims: int, blocks: int, heads: int, dropout: float) -> Any:
    """The transformer (index 0 is padding, item ``k`` is token ``k + 1``)."""
    import torch
    from torch import nn

    class SASRecNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.items = nn.Embedding(n_items + 1, dims, padding_idx=0)
            self.positions = nn.Embedding(max_len, dims)
            layer = nn.TransformerEncoderLayer(
                dims, heads, dim_feedforward=dims * 2, dropout=dropout, batch_first=True, norm_first=True
            )
            self.encoder = nn.TransformerEncoder(layer, blocks, enable_nested_tensor=False)
            self.norm = nn.LayerNorm(dims)
            self.dropout = nn.Dropout(dropout)
            # Small initial embeddings: the output layer is tied to them, and N(0, 1) rows
            # give logits so large that training diverges.
            nn.init.normal_(self.items.weight, std=0.05)
            nn.init.normal_(self.positions.weight, std=0.05)
            with torch.no_grad():
                self.items.weight[0].zero_()
            self.register_buffer("causal", torch.triu(torch.ones(max_len, max_len, dtype=torch.bool), diagonal=1))

        def forward(self, tokens: torch.Tensor) -> torch.Tensor:
            length = tokens.shape[1]
            pos = torch.arange(length, device=tokens.device)
            x = self.dropout(self.items(tokens) + self.positions(pos)[None])
            # No key-padding mask: left-padded rows would attend to nothing and turn NaN.
            # Padding tokens embed to zero, so attending to them only adds position noise.
            causal = self.causal[:length, :length]  # type: ignore[index]
            x = self.encoder(x, mask=causal, is_causal=True)
            return self.norm(x)  # type: ignore[no-any-return]

        def logits(self, hidden: torch.Tensor) -> torch.Tensor:
            return hidden @ self.items.weight[1:].T

    return SASRecNet()


class SASRec(ItemScorer):
    """Next-watch prediction with a causal transformer.

    Args:
        max_len: how many recent watches the model reads.
        dims: embedding size.
        blocks: transformer blocks.
        heads: attention heads.
        dropout: dropout rate.
        epochs: passes over the training windows.
        batch_size: windows per step.
        learning_rate: Adam step.
        seed: torch and numpy seed (results are reproducible on one machine).
    """

    name: ClassVar[str] = "sasrec"
    similar_priority: ClassVar[int] = 70

    def __init__(
        self,
        max_len: int = 50,
        dims: int = 64,
        blocks: int = 1,
        heads: int = 1,
        dropout: float = 0.2,
        epochs: int = 5,
        batch_size: int = 32,
        learning_rate: float = 2e-3,
        seed: int = 0,
    ) -> None:
        super().__init__(
            max_len=max_len,
            dims=dims,
            blocks=blocks,
            heads=heads,
            dropout=dropout,
            epochs=epochs,
            batch_size=batch_size,
            learning_rate=learning_rate,
            seed=seed,
        )
        self.max_len = int(max_len)
        self.dims = int(dims)
        self.blocks = int(blocks)
        self.heads = int(heads)
        self.dropout = float(dropout)
        self.epochs = int(epochs)
        self.batch_size = int(batch_size)
        self.learning_rate = float(learning_rate)
        self.seed = int(seed)
        self._net: Any = None

    def _windows(self, hist: Histories) -> npt.NDArray[np.int64]:
        """Training windows of ``max_len + 1`` tokens (left-padded), stepping back through long histories."""
        out = []
        span = self.max_len + 1
        for u in range(hist.n_users):
            seq = hist.item_idx[hist.user_rows(u)] + 1
            end = len(seq)
            while end > 1:
                chunk = seq[max(0, end - span) : end]
                out.append(np.pad(chunk, (span - len(chunk), 0)))
                end -= self.max_len
        return np.asarray(out, np.int64)

    def _fit(self, hist: Histories, **context: Any) -> None:
        import torch
        from tqdm import tqdm

        torch.manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        self._net = _build_network(hist.n_items, self.max_len, self.dims, self.blocks, self.heads, self.dropout)
        windows = torch.from_numpy(self._windows(hist))
        optimiser = torch.optim.Adam(self._net.parameters(), lr=self.learning_rate)
        loss_fn = torch.nn.CrossEntropyLoss(ignore_index=-1)
        self._net.train()
        for epoch in tqdm(range(self.epochs), desc="sasrec epochs", leave=False, disable=self.epochs < 3):
            order = torch.from_numpy(rng.permutation(len(windows)))
            total = 0.0
            for start in range(0, len(order), self.batch_size):
                batch = windows[order[start : start + self.batch_size]]
                inputs, targets = batch[:, :-1], batch[:, 1:] - 1
                targets = torch.where(inputs == 0, torch.full_like(targets, -1), targets)
                logits = self._net.logits(self._net(inputs))
                loss = loss_fn(logits.reshape(-1, hist.n_items), targets.reshape(-1))
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                total += float(loss.detach()) * len(batch)
            logger.info("sasrec epoch %d loss %.4f", epoch, total / max(len(windows), 1))
        self._net.eval()

    def _score(self, users: Sequence[UserContext]) -> npt.NDArray[np.float32]:
        import torch

        tokens = np.zeros((len(users), self.max_len), np.int64)
        for k, ctx in enumerate(users):
            recent = ctx.items[-self.max_len :] + 1
            if len(recent):
                tokens[k, -len(recent) :] = recent
        with torch.no_grad():
            hidden = self._net(torch.from_numpy(tokens))[:, -1]
            scores = self._net.logits(hidden).numpy().astype(np.float32)
        empty = np.array([len(ctx.items) == 0 for ctx in users])
        scores[empty] = 0.0
        return scores  # type: ignore[no-any-return]

    def _similar(self, item_idx: int) -> npt.NDArray[np.float32]:
        import torch

        with torch.no_grad():
            emb = self._net.items.weight[1:].numpy()
        norms = np.linalg.norm(emb, axis=1) + 1e-9
        return (emb @ emb[item_idx]) / (norms * norms[item_idx])  # type: ignore[no-any-return]

    def _state(self) -> dict[str, npt.NDArray[np.generic]]:
        return {f"net.{k}": v.detach().cpu().numpy() for k, v in self._net.state_dict().items()}

    def _load_state(self, arrays: dict[str, npt.NDArray[np.generic]]) -> None:
        import torch

        self._net = _build_network(self.history.n_items, self.max_len, self.dims, self.blocks, self.heads, self.dropout)
        self._net.load_state_dict({k[4:]: torch.from_numpy(np.array(v)) for k, v in arrays.items()})
        self._net.eval()
