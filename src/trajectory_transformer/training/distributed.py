"""Data-parallel plumbing for `torchrun`: detect the environment, init/cleanup, rank-0 helpers.

Outside torchrun everything here is a no-op with rank 0 of 1, so the trainer has one code path.
Backend: gloo on CPU, nccl on CUDA.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

from ..errors import TTError

__all__ = [
    "DistInfo",
    "all_gather_bytes",
    "all_reduce_sum",
    "barrier",
    "cleanup",
    "detect",
    "init",
]


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in the job (rank 0 of 1 when not distributed)."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Only the main process writes artifacts, logs and progress bars."""
        return self.rank == 0


def detect() -> DistInfo:
    """Read torchrun's RANK / LOCAL_RANK / WORLD_SIZE environment (absent: single process)."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError as err:
        raise TTError(
            f"RANK/LOCAL_RANK/WORLD_SIZE must be integers ({err}); launch with torchrun"
        ) from err
    if world < 1 or not 0 <= rank < world:
        raise TTError(f"bad torchrun environment: RANK={rank} WORLD_SIZE={world}")
    return DistInfo(rank=rank, local_rank=local, world_size=world)


def init(info: DistInfo, device: torch.device, timeout_s: float = 600.0) -> torch.device:
    """Start the process group if distributed; return the device this rank should use.

    On CUDA each rank takes `cuda:LOCAL_RANK` (the configured device index is ignored).
    """
    if device.type == "cuda":
        device = torch.device("cuda", info.local_rank if info.enabled else (device.index or 0))
        torch.cuda.set_device(device)
    if not info.enabled or dist.is_initialized():
        return device
    backend = "nccl" if device.type == "cuda" else "gloo"
    if "MASTER_ADDR" not in os.environ or "MASTER_PORT" not in os.environ:
        raise TTError("WORLD_SIZE > 1 but MASTER_ADDR/MASTER_PORT are unset; launch with torchrun")
    kwargs = {"device_id": device} if backend == "nccl" else {}
    dist.init_process_group(
        backend=backend,
        rank=info.rank,
        world_size=info.world_size,
        timeout=timedelta(seconds=timeout_s),
        **kwargs,  # type: ignore[arg-type]
    )
    return device


def barrier(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.barrier()


def cleanup(info: DistInfo) -> None:
    """Tear the group down once every rank got here.

    Without the barrier a rank that finished early (no files to close) destroyed its gloo group
    while rank 0 was still closing TensorBoard and checkpoint files; about one run in five then
    ended with `terminate called without an active exception` (SIGABRT) on the other rank.
    """
    if info.enabled and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def _comm_device(t: torch.device) -> torch.device:
    """nccl only moves CUDA tensors; gloo takes CPU ones."""
    if dist.is_initialized() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu") if t.type != "cpu" else t


def all_reduce_sum(t: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Sum a tensor over ranks (identity when not distributed); returns it on its own device."""
    if not info.enabled:
        return t
    work = t.detach().to(_comm_device(t.device)).clone()
    dist.all_reduce(work, op=dist.ReduceOp.SUM)
    return work.to(t.device)


def all_gather_bytes(data: torch.Tensor, info: DistInfo) -> list[torch.Tensor]:
    """Gather an equal-length uint8 CPU tensor (e.g. an RNG state) from every rank, rank order."""
    if not info.enabled:
        return [data]
    dev = _comm_device(data.device)
    parts = [torch.empty_like(data, device=dev) for _ in range(info.world_size)]
    dist.all_gather(parts, data.to(dev))
    return [p.cpu() for p in parts]
