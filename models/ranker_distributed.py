"""The neural ranker trained by several processes: torch DDP over gloo, rank 0 saves.

``fit_distributed`` starts ``workers`` processes (``torch.multiprocessing``, spawn),
joins them in a gloo process group and runs the ranker's own loop
(``NeuralRanker.train_epochs``) in each with the network wrapped in
``DistributedDataParallel``, which all-reduces (averages) the gradients after every
backward pass, so every process applies the same update and ends with the same
parameters. Rank 0 writes the fitted ranker with ``NeuralRanker.save`` and the parent
reads it back: no code is pickled between processes, only arrays and params.

How the work is split, and why a distributed fit matches the one-process fit:

* every process prepares the same lists and normalisation from the same arrays and
  seed (``NeuralRanker.prepare``) and draws the same shuffled order of lists per epoch;
* a ``DistributedSampler`` (``shuffle=False``: the order is already shuffled, the same in
  every process) gives rank ``r`` the positions ``r, r + W, r + 2W, …`` of that order;
* each process steps on ``ceil(batch_size / W)`` lists, so when ``W`` divides
  ``batch_size`` the W per-process batches of step ``k`` are exactly the one-process
  batch ``k`` and DDP's averaged gradient is its gradient. What differs is the order of
  floating-point sums and the epoch's last batch, which the sampler pads with up to
  ``W - 1`` repeated lists so that every process takes the same number of steps.

The processes exchange gradients only; each holds the whole training matrix (the
ranker's inputs are a few hundred thousand rows of a few dozen floats). Processes on
several hosts would run ``train_rank`` under ``torchrun`` with an ``env://`` group.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import queue
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from models.ranker import NeuralRanker

logger = logging.getLogger(__name__)

#: Written by rank 0 next to the ranker: each rank's parameter digest after training.
RANKS_FILE = "ranks.json"
#: How long a process waits for its peers (joining the group, each all-reduce).
PEER_TIMEOUT_S = 300.0
MAX_WORKERS = 64


@dataclass(frozen=True)
class DistributedFit:
    """A ranker fitted by ``workers`` processes.

    Attributes:
        ranker: the fitted ranker, as rank 0 saved it.
        workers: the number of processes (the world size).
        rank_digests: SHA-256 of each rank's parameters after training, in rank order; DDP
            keeps the replicas in step, so they are all equal (checked before rank 0 saves).
        seconds: wall time from starting the processes to reading the saved ranker.
    """

    ranker: NeuralRanker
    workers: int
    rank_digests: list[str]
    seconds: float


def parameters_digest(net: Any) -> str:
    """SHA-256 over a network's state dict (names and float bytes, in name order)."""
    digest = hashlib.sha256()
    for name, value in sorted(net.state_dict().items()):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(value.detach().cpu().numpy()).tobytes())
    return digest.hexdigest()


def shard_positions(length: int, workers: int, rank: int) -> list[int]:
    """The positions of an epoch's order that ``rank`` trains on (``DistributedSampler``, no shuffle).

    Rank ``r`` gets ``r, r + W, r + 2W, …``; the order is padded by repeating its start
    until its length divides by ``W``, so every rank gets ``ceil(length / W)`` positions.
    """
    from torch.utils.data.distributed import DistributedSampler

    positions: Any = range(length)  # any sized sequence is a map-style dataset
    sampler: DistributedSampler[int] = DistributedSampler(
        positions, num_replicas=workers, rank=rank, shuffle=False, drop_last=False
    )
    return list(sampler)


def train_rank(
    ranker: NeuralRanker,
    features: npt.NDArray[np.float32],
    groups: npt.NDArray[np.int64],
    labels: npt.NDArray[np.float32],
    feature_names: Sequence[str],
    *,
    on_epoch: Callable[[int, float], None] | None = None,
) -> list[str]:
    """Fit ``ranker`` as this process's rank of the initialised default process group.

    Every rank must call it with the same arrays and params. Returns every rank's
    parameter digest, in rank order; rank 0's ranker is the one to save.

    Raises:
        RuntimeError: the ranks' parameters differ after training (they never should).
    """
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    rank, workers = dist.get_rank(), dist.get_world_size()
    xn, index = ranker.prepare(features, groups, labels, feature_names)
    net = ranker._build(xn.shape[1])
    # DDP broadcasts rank 0's initial parameters; dropout masks should differ between ranks.
    model = DistributedDataParallel(net)
    torch.manual_seed(ranker.seed + rank)

    def shard(order: Any, epoch: int) -> Any:
        return order[torch.tensor(shard_positions(len(order), workers, rank), dtype=torch.long)]

    def epoch_loss(total: float, batches: int) -> float:
        # Every rank steps as often, so the mean of the ranks' batch losses is the epoch's mean loss.
        sums = torch.tensor([total, float(batches)], dtype=torch.float64)
        dist.all_reduce(sums)
        return float(sums[0] / sums[1])

    ranker._net = ranker.train_epochs(
        model,
        xn,
        index,
        on_epoch=on_epoch,
        batch_size=math.ceil(ranker.batch_size / workers),
        shard=shard,
        epoch_loss=epoch_loss,
    )
    digests: list[Any] = [None] * workers
    dist.all_gather_object(digests, parameters_digest(ranker._net))
    if len(set(digests)) != 1:
        raise RuntimeError(f"ranker replicas diverged after training: parameter digests {digests}")
    return [str(d) for d in digests]


def _worker(
    rank: int,
    workers: int,
    store: str,
    out_dir: str,
    params: dict[str, Any],
    features: npt.NDArray[np.float32],
    groups: npt.NDArray[np.int64],
    labels: npt.NDArray[np.float32],
    feature_names: list[str],
    progress: Any,
) -> None:
    """One spawned process: join the gloo group, train its shard, and on rank 0 save."""
    import torch
    import torch.distributed as dist

    # One thread per process: W processes share the host's cores instead of oversubscribing them.
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo",
        init_method=Path(store).as_uri(),
        rank=rank,
        world_size=workers,
        timeout=timedelta(seconds=PEER_TIMEOUT_S),
    )
    try:
        ranker = NeuralRanker(**params)
        on_epoch = (lambda epoch, loss: progress.put((epoch, loss))) if rank == 0 else None
        digests = train_rank(ranker, features, groups, labels, feature_names, on_epoch=on_epoch)
        if rank == 0:
            ranker.save(Path(out_dir))
            (Path(out_dir) / RANKS_FILE).write_text(json.dumps({"workers": workers, "digests": digests}))
    finally:
        dist.destroy_process_group()


def fit_distributed(
    ranker: NeuralRanker,
    features: npt.NDArray[np.float32],
    groups: npt.NDArray[np.int64],
    labels: npt.NDArray[np.float32],
    feature_names: Sequence[str],
    *,
    workers: int,
    on_epoch: Callable[[int, float], None] | None = None,
    timeout_s: float = 3600.0,
) -> DistributedFit:
    """Fit a ranker with ``ranker``'s params in ``workers`` local processes (DDP, gloo).

    Same arguments as ``NeuralRanker.fit``; ``ranker`` itself is left unfitted and the
    fitted one is ``DistributedFit.ranker``. ``on_epoch`` runs here, in the calling
    process, with rank 0's (epoch, mean loss over all ranks).

    Raises:
        ValueError: bad inputs (checked here before any process starts) or ``workers`` out of range.
        RuntimeError: a process failed (its error is in the message) or the replicas diverged.
        TimeoutError: training took longer than ``timeout_s``.
    """
    import torch.multiprocessing as mp

    if not 1 <= workers <= MAX_WORKERS:
        raise ValueError(f"workers must be between 1 and {MAX_WORKERS}, got {workers}")
    x = np.asarray(features, dtype=np.float32)
    names = list(feature_names)
    # The same checks every rank will make, here, so bad input fails before processes start.
    NeuralRanker(**ranker.params()).prepare(x, groups, labels, names)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ranker-ddp-") as tmp:
        out_dir = Path(tmp) / "ranker"
        progress = mp.get_context("spawn").SimpleQueue()
        args = (workers, str(Path(tmp) / "store"), str(out_dir), ranker.params(), x, groups, labels, names, progress)
        context = mp.start_processes(_worker, args=args, nprocs=workers, join=False, start_method="spawn")
        try:
            while not _join(context):
                _drain(progress, on_epoch)
                if time.perf_counter() - started > timeout_s:
                    raise TimeoutError(f"distributed ranker training took longer than {timeout_s:.0f} s")
        finally:
            for process in context.processes:
                if process.is_alive():
                    process.terminate()
        _drain(progress, on_epoch)
        fitted = NeuralRanker.load(out_dir)
        ranks = json.loads((out_dir / RANKS_FILE).read_text())
    seconds = time.perf_counter() - started
    logger.info("ranker trained by %d processes (DDP, gloo) in %.1f s", workers, seconds)
    return DistributedFit(ranker=fitted, workers=workers, rank_digests=list(ranks["digests"]), seconds=seconds)


def _join(context: Any) -> bool:
    """Whether every process has finished; a failed one becomes a RuntimeError carrying its error."""
    from torch.multiprocessing.spawn import ProcessException

    try:
        return bool(context.join(timeout=0.2))
    except ProcessException as error:
        raise RuntimeError(f"distributed ranker training failed: {error}") from error


def _drain(progress: Any, on_epoch: Callable[[int, float], None] | None) -> None:
    """Hand rank 0's (epoch, loss) reports to ``on_epoch``."""
    while True:
        try:
            if progress.empty():
                return
            epoch, loss = progress.get()
        except (EOFError, OSError, queue.Empty):
            return
        if on_epoch is not None:
            on_epoch(int(epoch), float(loss))
