"""Data-parallel training with PyTorch's own engine: ``torchrun`` + DistributedDataParallel.

Every process (a *rank*) holds a full copy of the model and trains on its own
shard of each epoch's examples (``DistributedSampler``); after each backward
pass DDP averages the gradients over the ranks, so all copies take the same
step and stay identical. With ``B`` examples per rank and ``R`` ranks this is
the same as one process training on batches of ``R * B`` examples made of the
ranks' batches put together (:class:`GlobalBatchSampler` builds them, and the
tests check the equality).

Launch (one machine, 4 GPUs; or CPUs with gloo)::

    torchrun --nproc_per_node 4 -m coursekit train --model resnet18_small --data cifar10 --data-root DIR

Several machines: the same command on each with ``--nnodes N --node_rank i
--master_addr HOST --master_port PORT``. ``torchrun`` sets ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT`` for every
process; :func:`init_from_env` reads them. NCCL is used on GPUs, gloo on CPUs.

``python -m coursekit.nn.distributed --out DIR`` (under torchrun) runs a small
float64 training and saves each rank's final weights, for the tests.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Iterator, NamedTuple, Sequence

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler, TensorDataset

from .device import pick_device
from .models import LeNet5
from .train import fit

__all__ = ["DistInfo", "launched_by_torchrun", "init_from_env", "cleanup", "wrap", "shard_loader",
           "GlobalBatchSampler", "toy_problem", "main"]


class DistInfo(NamedTuple):
    """Where this process stands: its global rank, the number of ranks, its rank on this machine, its device."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_by_torchrun() -> bool:
    """True when ``torchrun`` (or another launcher) set ``WORLD_SIZE`` > 1 for this process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_from_env(backend: str | None = None, device: str = "auto") -> DistInfo:
    """Join the process group described by torchrun's environment variables.

    Parameters
    ----------
    backend : {"nccl", "gloo"}, optional
        Default: NCCL when the process will use a CUDA GPU, gloo otherwise.
    device : str
        ``"auto"`` uses GPU ``LOCAL_RANK`` when CUDA is present, else the CPU;
        ``"cpu"`` forces CPUs (gloo).

    Without torchrun (``WORLD_SIZE`` unset or 1) nothing is initialised and a
    single-process ``DistInfo`` is returned, so one script serves both cases.
    """
    rank = int(os.environ.get("RANK", "0"))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if world <= 1:
        return DistInfo(0, 1, 0, pick_device(device))
    use_cuda = torch.cuda.is_available() and device != "cpu"
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"init_from_env: device must be 'auto', 'cpu' or 'cuda' under torchrun, got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        pick_device("cuda")  # raises the usual clear error
    if use_cuda:
        torch.cuda.set_device(local)
        dev = torch.device("cuda", local)
    else:
        dev = torch.device("cpu")
    backend = backend or ("nccl" if use_cuda else "gloo")
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, init_method="env://")
    return DistInfo(rank, world, local, dev)


def cleanup() -> None:
    """Leave the process group, if this process is in one."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def wrap(model: nn.Module, info: DistInfo) -> nn.Module:
    """Move ``model`` to this rank's device and wrap it in DDP (a no-op for one process).

    DDP broadcasts rank 0's parameters and buffers at construction, so every rank starts equal.
    """
    model = model.to(info.device)
    if info.world_size <= 1:
        return model
    ids = [info.device.index] if info.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def shard_loader(dataset: Dataset, batch_size: int, info: DistInfo | None = None, *, shuffle: bool = True,
                 seed: int = 0, drop_last: bool = False, num_workers: int = 0) -> DataLoader:
    """A loader over this rank's shard: ``batch_size`` examples per rank per step.

    The ``DistributedSampler`` pads the epoch's permutation so every rank gets
    the same number of examples; :func:`coursekit.nn.train.fit` calls its
    ``set_epoch`` so each epoch is shuffled differently (and the same on all ranks).
    """
    if info is None:
        rank, world = (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
    else:
        rank, world = info.rank, info.world_size
    sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=shuffle, seed=seed,
                                 drop_last=drop_last)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers)


class GlobalBatchSampler(Sampler[list[int]]):
    """One process's view of a DDP run: step ``k`` yields the union of every rank's ``k``-th batch.

    Training one process on these batches (loss averaged over the union) gives
    the same updates as ``world_size`` DDP ranks each using
    ``shard_loader(dataset, batch_size, ...)``, because DDP averages the ranks'
    mean-loss gradients and every rank's batch has the same size.
    """

    def __init__(self, dataset_len: int, world_size: int, batch_size: int, *, shuffle: bool = True,
                 seed: int = 0, drop_last: bool = False):
        self.batch_size = batch_size
        self.samplers = [DistributedSampler(range(dataset_len), num_replicas=world_size, rank=r, shuffle=shuffle,
                                            seed=seed, drop_last=drop_last) for r in range(world_size)]

    def set_epoch(self, epoch: int) -> None:
        for s in self.samplers:
            s.set_epoch(epoch)

    def __iter__(self) -> Iterator[list[int]]:
        shards = [list(s) for s in self.samplers]
        b = self.batch_size
        for k in range(len(self)):
            yield [i for shard in shards for i in shard[k * b:(k + 1) * b]]

    def __len__(self) -> int:
        return -(-len(self.samplers[0]) // self.batch_size)


def toy_problem(seed: int = 0, n: int = 90, dtype: torch.dtype = torch.float64) -> tuple[nn.Module, TensorDataset]:
    """A small LeNet-5 (tanh, average pooling: smooth, no ties) and a random 28x28 data set, for checks.

    Built from ``seed`` alone, so every process (and a single-process reference) gets the same.
    """
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 28, 28, generator=g, dtype=dtype)
    y = torch.randint(0, 10, (n,), generator=g)
    torch.manual_seed(seed)
    model = LeNet5(1, 10, 28, activation="tanh", pool="avg").to(dtype)
    return model, TensorDataset(x, y)


def main(argv: Sequence[str] | None = None) -> int:
    """Under torchrun: train :func:`toy_problem` with DDP and save each rank's weights to ``OUT/rank{r}.pt``."""
    p = argparse.ArgumentParser(prog="python -m coursekit.nn.distributed", description=main.__doc__)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=8, help="examples per rank per step")
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)
    info = init_from_env(device=args.device)
    try:
        model, data = toy_problem(args.seed)
        ddp = wrap(model, info)
        loader = shard_loader(data, args.batch_size, info, seed=args.seed)
        fit(ddp, loader, epochs=args.epochs, optimizer="sgd", lr=args.lr, momentum=0.9, weight_decay=1e-4,
            schedule="cosine", device=info.device, seed=args.seed, progress=False)
        args.out.mkdir(parents=True, exist_ok=True)
        torch.save({k: v.cpu() for k, v in model.state_dict().items()}, args.out / f"rank{info.rank}.pt")
    finally:
        cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
