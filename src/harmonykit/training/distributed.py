"""Process-group setup for multi-GPU / multi-machine training.

``torchrun --nproc_per_node N -m harmonykit train CONFIG.yaml`` sets ``WORLD_SIZE``,
``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``; when ``WORLD_SIZE > 1``,
:func:`init_distributed` joins the group with ``init_method="env://"``: backend ``nccl`` on
CUDA (one GPU per process, ``cuda:LOCAL_RANK``), ``gloo`` on CPU. Without those variables
(or with ``WORLD_SIZE=1``) training runs in a single process and nothing is initialised.

Only rank 0 writes to the run directory (:attr:`DistContext.is_main`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from harmonykit.errors import ConfigError

__all__ = ["DistContext", "init_distributed", "shutdown_distributed", "all_reduce_flags", "pick_device"]


@dataclass(frozen=True)
class DistContext:
    """Where this process stands: ``rank`` of ``world_size``, its device, and whether the
    process group was initialised here (and must be destroyed at the end)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    initialized: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def pick_device(preference: str, local_rank: int = 0) -> torch.device:
    """``auto`` -> ``cuda:LOCAL_RANK`` when CUDA is available, else ``cpu``."""
    if preference == "cpu":
        return torch.device("cpu")
    if preference == "cuda" or (preference == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise ConfigError("device: 'cuda' was asked for but CUDA is not available")
        return torch.device("cuda", local_rank % max(1, torch.cuda.device_count()))
    return torch.device("cpu")


def init_distributed(device_preference: str = "auto") -> DistContext:
    """Initialise the process group from the ``torchrun`` environment (see module doc)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", str(rank)))
    device = pick_device(device_preference, local_rank)
    if world <= 1:
        return DistContext(0, 1, 0, device, False)
    if dist.is_initialized():
        return DistContext(dist.get_rank(), dist.get_world_size(), local_rank, device, False)
    for var in ("MASTER_ADDR", "MASTER_PORT"):
        if var not in os.environ:
            raise ConfigError(f"WORLD_SIZE={world} but {var} is not set; start multi-process runs with torchrun")
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend=backend, init_method="env://", world_size=world, rank=rank)
    return DistContext(rank, world, local_rank, device, True)


def shutdown_distributed(ctx: DistContext) -> None:
    """Destroy the process group if :func:`init_distributed` created it."""
    if ctx.initialized and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_flags(ctx: DistContext, flags: list[float]) -> list[float]:
    """Element-wise maximum of ``flags`` over all ranks (identity in a single process).

    Used so that every rank takes the same stop decision (non-finite loss, time budget).
    """
    if not ctx.distributed:
        return list(flags)
    t = torch.tensor(flags, dtype=torch.float64, device=ctx.device if ctx.device.type == "cuda" else "cpu")
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return t.tolist()
