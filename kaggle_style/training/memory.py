"""Never die of GPU memory: an out-of-memory step is retried with the batch split in two.

Accelerate's `find_executable_batch_size` halves the batch and reruns the whole function; here
the loader's batch stays as configured and the step runs it as 2, 4, ... micro-batches whose
gradients add up (the same effective batch, samples, mixing and schedule), from the very step
that ran out, so nothing trained before is lost. A failed forward has already moved BatchNorm's
running statistics and drawn dropout's random numbers: both are put back for the first steps of
a fold, where a fixed-size model runs out if it ever does, so the run then equals one started at
the smaller micro-batch.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from typing import TypeVar

import torch
from torch import nn

from kaggle_style.errors import UserError

T = TypeVar("T")
SAVED_STEPS = 2  # steps of a fold whose state is kept for an exact retry


Saved = tuple[list[torch.Tensor], torch.Tensor, list[torch.Tensor]]


def _state(model: nn.Module) -> Saved:
    """BatchNorm's running statistics and the random generators' states."""
    stats = [
        b.detach().clone()
        for m in model.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm)
        for b in m.buffers()
    ]
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []
    return stats, torch.get_rng_state(), cuda


def _restore(model: nn.Module, saved: Saved) -> None:
    stats, cpu, cuda = saved
    buffers = [
        b
        for m in model.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm)
        for b in m.buffers()
    ]
    with torch.no_grad():
        for buffer, value in zip(buffers, stats, strict=True):
            buffer.copy_(value)
    torch.set_rng_state(cpu)
    if cuda:
        torch.cuda.set_rng_state_all(cuda)


class MemoryFit:
    """How many micro-batches a loader batch is cut into; doubles on each out-of-memory error."""

    def __init__(self, batch_size: int, grad_accum: int, say: Callable[[str], None]) -> None:
        self.batch_size, self.grad_accum, self.say = batch_size, grad_accum, say
        self.chunks = 1
        self.ok_steps = 0

    @property
    def micro_batch(self) -> int:
        return -(-self.batch_size // self.chunks)

    def record(self) -> dict[str, int]:
        """What a run's files say about the batch that fit."""
        return {"micro_batch": self.micro_batch, "grad_accum": self.grad_accum * self.chunks}

    def run(
        self, step: Callable[[int], T], optimizer: torch.optim.Optimizer, model: nn.Module
    ) -> T:
        """`step(chunks)`, retried with twice the chunks while it runs out of memory."""
        from accelerate.utils.memory import should_reduce_batch_size

        while True:
            saved = _state(model) if self.ok_steps < SAVED_STEPS else None
            try:
                out = step(self.chunks)
                self.ok_steps += 1
                return out
            except Exception as err:  # only out-of-memory errors are retried, below
                if not should_reduce_batch_size(err):
                    raise
            # outside the except block, so the failed step's activations can be freed
            optimizer.zero_grad(set_to_none=True)  # a half-done backward must not count
            if saved is not None:
                _restore(model, saved)
            gc.collect()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            self._halve()

    def _halve(self) -> None:
        before = self.record()
        if before["micro_batch"] <= 1:
            raise UserError(
                "out of GPU memory at micro-batch 1: set grad_checkpointing: true, a "
                "smaller image_size, or use a GPU with more memory"
            )
        self.chunks *= 2
        after = self.record()
        self.say(
            f"out of memory at micro-batch {before['micro_batch']} x {before['grad_accum']} "
            f"accumulation; going on from the same step at micro-batch "
            f"{after['micro_batch']} x {after['grad_accum']} (effective batch "
            f"{self.batch_size * self.grad_accum} unchanged)"
        )


def grad_checkpointing(model: nn.Module, on: bool, backbone: str) -> None:
    """timm's activation recomputation: about a third slower, far less activation memory."""
    if not on:
        return
    set_grad_checkpointing = getattr(model, "set_grad_checkpointing", None)
    if set_grad_checkpointing is None:
        raise UserError(
            f"grad_checkpointing: {backbone} has no set_grad_checkpointing in timm; "
            "set grad_checkpointing: false"
        )
    set_grad_checkpointing(True)
