"""DistributedDataParallel: two CPU processes (gloo, 127.0.0.1) equal one process on the same global batches."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")
import torch.distributed as dist  # noqa: E402
from torch.utils.data import DataLoader, DistributedSampler  # noqa: E402

from coursekit.nn.distributed import GlobalBatchSampler, toy_problem  # noqa: E402
from coursekit.nn.train import fit  # noqa: E402

pytestmark = pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(),
                                reason="torch.distributed with gloo is not available in this build")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_global_batches_are_the_union_of_the_ranks_batches():
    n, world, b = 23, 2, 4
    gbs = GlobalBatchSampler(n, world, b, seed=5)
    gbs.set_epoch(1)
    shards = []
    for r in range(world):
        s = DistributedSampler(range(n), num_replicas=world, rank=r, seed=5)
        s.set_epoch(1)
        shards.append(list(s))
    batches = list(gbs)
    assert len(batches) == len(gbs) == 3  # 12 examples per rank in batches of 4
    for k, batch in enumerate(batches):
        assert batch == shards[0][k * b:(k + 1) * b] + shards[1][k * b:(k + 1) * b]
    assert sorted(set(i for bt in batches for i in bt)) == list(range(n))


def test_two_gloo_processes_match_one_process(tmp_path):
    epochs, batch, lr, seed = 2, 8, 0.05, 0
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo", "MASTER_ADDR": "127.0.0.1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2",
           "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
           "-m", "coursekit.nn.distributed", "--out", str(tmp_path), "--epochs", str(epochs),
           "--batch-size", str(batch), "--lr", str(lr), "--seed", str(seed), "--device", "cpu"]
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, f"torchrun failed ({run.returncode}):\n{run.stdout[-2000:]}\n{run.stderr[-4000:]}"
    rank0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    rank1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    for name in rank0:
        assert torch.equal(rank0[name], rank1[name]), f"DDP ranks ended with different {name}"

    # One process, float64, on the union of the ranks' batches, with the same optimizer and schedule.
    model, data = toy_problem(seed)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    loader = DataLoader(data, batch_sampler=GlobalBatchSampler(len(data), 2, batch, seed=seed))
    fit(model, loader, epochs=epochs, optimizer="sgd", lr=lr, momentum=0.9, weight_decay=1e-4,
        schedule="cosine", device="cpu", seed=seed, progress=False)
    for name, ref in model.state_dict().items():
        moved = (ref - start[name]).abs().max().item()
        diff = (ref - rank0[name]).abs().max().item()
        # float64: the two orders of summation differ by rounding only (~1e-16 per step, 24 steps).
        assert diff <= 1e-12 * max(1.0, ref.abs().max().item()), (
            f"{name}: DDP and the single-process run differ by {diff:.3g} (tolerance 1e-12); "
            f"the weights moved by {moved:.3g} in training")
        assert moved > 0 or name.endswith("num_batches_tracked")
