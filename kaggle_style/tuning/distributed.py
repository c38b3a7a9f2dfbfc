"""One trial on several processes (`accelerate launch --multi_gpu`, torchrun): rank 0 owns it.

Rank 0 samples, reports and decides pruning; it sends each trial's number and values, and each
prune decision, to the other ranks as Python objects. Not optuna-integration's
`TorchDistributedTrial`: it sends `suggest_float` results through a float32 tensor (lr 0.003
arrives as 0.003000000026 on the other ranks), so ranks would train one DDP model with
different values.
"""

from __future__ import annotations

import os
from typing import Any

_group: Any = None  # the CPU (gloo) group every message of this module goes over


def process_rank() -> tuple[int, int]:
    """(rank, world size) under `accelerate launch --multi_gpu` / torchrun; (0, 1) otherwise."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return 0, 1
    import torch
    from accelerate import PartialState

    # joins the process group the launcher set up (gloo on CPU, as the trainer's Accelerator)
    state = PartialState(cpu=not torch.cuda.is_available())
    return state.process_index, state.num_processes


def _control_group() -> Any:
    """The default group when it is gloo; a gloo group beside it on NCCL (objects over CPU)."""
    global _group
    if _group is None:
        import torch.distributed as dist

        world = dist.group.WORLD
        _group = dist.new_group(backend="gloo") if dist.get_backend(world) == "nccl" else world
    return _group


def share_from_main(obj: Any, world_size: int) -> Any:
    """Rank 0's `obj` on every rank (the others pass anything, usually None)."""
    if world_size <= 1:
        return obj
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=0, group=_control_group())
    return box[0]
