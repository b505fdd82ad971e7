"""Training on several processes: ``torchrun --nproc-per-node N -m egbad_core.cli train …``.

torch's own engine does the work: each process joins a ``torch.distributed`` group (NCCL on GPUs,
gloo on CPUs) and each network that an update trains runs wrapped in ``DistributedDataParallel``,
which averages its gradients across the processes during the backward pass. Every process draws
the same shuffle, crops and noise (the trainer's generator, seeded alike) and trains on its own
share of each batch, so together they take the steps one process would take on the whole batch;
rank 0 alone writes checkpoints. A stop (Ctrl-C, the window's Stop) or a diverged loss on any
process is agreed on by all before the next iteration, so none is left waiting for the others.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn

from ..errors import EgbadError
from .processes import die_with_parent


@dataclass(frozen=True)
class World:
    """Which process this is among how many: (0, 1) when training alone."""

    rank: int = 0
    size: int = 1

    @property
    def alone(self) -> bool:
        return self.size == 1

    @property
    def main(self) -> bool:
        """The process that writes checkpoints and speaks to the user."""
        return self.rank == 0


ALONE = World()


def launched() -> bool:
    """True in a process that torchrun started as one of several."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def join(device: str = "auto") -> tuple[World, str]:
    """Join the process group torchrun set up; (this process's World, the device it trains on:
    ``cuda``, made to mean its own GPU by LOCAL_RANK, with NCCL; else ``cpu`` with gloo). Alone:
    (ALONE, ``device``)."""
    if not launched():
        return ALONE, device
    # torchrun's agent starts its ranks from its main thread and does not end them if it is killed
    # with SIGKILL: each rank would train on alone, holding its memory, until it found its peer gone.
    die_with_parent()
    local = int(os.environ.get("LOCAL_RANK", "0"))
    gpu = device != "cpu" and torch.cuda.is_available()
    if gpu:
        if local >= torch.cuda.device_count():
            raise EgbadError(f"torchrun started more processes per node than this machine has GPUs "
                             f"({torch.cuda.device_count()}); lower --nproc-per-node.")
        torch.cuda.set_device(local)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if gpu else "gloo")
    return World(dist.get_rank(), dist.get_world_size()), ("cuda" if gpu else "cpu")


@contextlib.contextmanager
def joined(device: str = "auto") -> Iterator[tuple[World, str]]:
    """``join`` for the length of a command, and ``leave`` at its end, however it ends."""
    world, device = join(device)
    try:
        yield world, device
    finally:
        leave()


def leave() -> None:
    """Leave the group together: a process that tore its group down while another still talked
    to it was aborted by gloo now and then ("terminate called without an active exception")."""
    if dist.is_initialized():
        try:  # a process that left on an error is not waited for long
            if dist.get_backend() == "gloo":
                dist.monitored_barrier(timeout=timedelta(seconds=60))
            else:
                dist.barrier()
        except RuntimeError:
            pass
        finally:
            dist.destroy_process_group()


def check_fits(world: World, images: int, batch_size: int) -> None:
    """Each process's share of a batch needs two images at least (BatchNorm); raises EgbadError."""
    if world.alone:
        return
    if images < 2 * world.size or batch_size < 2 * world.size:
        raise EgbadError(
            f"{world.size} processes need at least {2 * world.size} training images and a batch size of "
            f"{2 * world.size} or more (each takes a share of every batch, two images at least); "
            f"there are {images} images and the batch size is {batch_size}. Start fewer processes."
        )


def parallel(module: nn.Module, world: World, device: torch.device) -> nn.Module:
    """``module`` wrapped to average its gradients across the processes (itself when alone)."""
    if world.alone:
        return module
    ids = [torch.cuda.current_device() if device.index is None else device.index] if device.type == "cuda" else None
    # Buffers (BatchNorm statistics, spectral norm's vectors) are not synced at each forward pass:
    # share_buffers hands rank 0's to all at each epoch's end.
    try:
        return nn.parallel.DistributedDataParallel(module, device_ids=ids, forward_sync_buffers=False)
    except TypeError:  # torch before forward_sync_buffers
        return nn.parallel.DistributedDataParallel(module, device_ids=ids, broadcast_buffers=False)


def agree(world: World, stop: bool, losses: tuple[float, ...]) -> tuple[bool, tuple[float, ...]]:
    """(any process asked to stop, the losses averaged over the processes): one small all-reduce.
    A NaN on any process is a NaN on all, so all see a divergence together."""
    if world.alone:
        return stop, losses
    where = "cuda" if dist.get_backend() == "nccl" else "cpu"  # NCCL reduces GPU tensors only
    values = torch.tensor([1.0 if stop else 0.0, *losses], dtype=torch.float64, device=where)
    dist.all_reduce(values)
    values = values.cpu()
    return bool(values[0] > 0), tuple(float(v) / world.size for v in values[1:])


def share_buffers(modules: list[nn.Module], world: World) -> None:
    """Rank 0's BatchNorm statistics (and other buffers) to every process, so all hold one model."""
    if world.alone:
        return
    for module in modules:
        for buffer in module.buffers():
            dist.broadcast(buffer.data, src=0)


def gather(value, world: World) -> list:
    """Every process's ``value`` (picklable) at rank 0, in rank order; elsewhere an empty list."""
    if world.alone:
        return [value]
    values = [None] * world.size if world.main else None
    dist.gather_object(value, values, dst=0)
    return values or []
