"""Per-epoch checkpoints that survive a kill at any moment and refuse another config's state.

Ours rather than `accelerator.save_state`: that writes into the target folder in place (a kill
leaves half a checkpoint that `load_state` then reads) and keeps RNG states as pickles; these are
written to a temporary folder, renamed into place, and loaded with `weights_only=True`.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from kaggle_style.errors import UserError
from kaggle_style.files import disk_guard, write_json

if TYPE_CHECKING:
    from timm.utils import ModelEmaV3

RUNS_FIX = "free space there or set runs_dir to a larger disk, then rerun with --resume"


class Checkpoints:
    """Model (safetensors), optimizer and scheduler, EMA, epoch, history and the model hash.

    Each checkpoint is written into its own folder and made current by an atomic pointer file.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def save(
        self,
        epoch: int,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler,
        ema: ModelEmaV3 | None,
        history: list[float],
        model_hash: str,
        learning_config: dict[str, Any],
    ) -> None:
        from safetensors.torch import save_model

        target = self.folder / f"epoch{epoch}"
        tmp = self.folder / f".epoch{epoch}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        with disk_guard(self.folder, f"the epoch {epoch + 1} checkpoint", RUNS_FIX, tmp):
            save_model(model, str(tmp / "model.safetensors"))
            if ema is not None:
                save_model(ema.module, str(tmp / "ema.safetensors"))
            torch.save(
                {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()},
                tmp / "optimizer.pt",
            )
            write_json(
                tmp / "state.json",
                {
                    "epoch": epoch,
                    "history": history,
                    "model_hash": model_hash,
                    "config": learning_config,
                },
            )
        shutil.rmtree(target, ignore_errors=True)
        os.replace(tmp, target)
        write_json(self.folder / "latest.json", {"epoch": epoch, "path": target.name})
        for old in self.folder.glob("epoch*"):
            if old != target:
                shutil.rmtree(old, ignore_errors=True)

    def latest(self) -> Path | None:
        pointer = self.folder / "latest.json"
        if not pointer.exists():
            return None
        path = self.folder / json.loads(pointer.read_text())["path"]
        return path if (path / "state.json").exists() else None

    def check_same_config(
        self, path: Path, model_hash: str, changes: Callable[[dict[str, Any]], list[str]]
    ) -> None:
        """Refuse to resume another config's state: its optimizer would bring back old rates."""
        state = json.loads((path / "state.json").read_text())
        if state.get("model_hash") != model_hash:
            what = "; ".join(changes(state.get("config", {}))) or "a config from an older version"
            raise UserError(
                f"cannot resume {path}: it was trained under another config ({what}); "
                "drop --resume to restart this fold under the new config, or restore the old one"
            )

    def load(
        self,
        path: Path,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler,
        ema: ModelEmaV3 | None,
    ) -> tuple[int, list[float]]:
        from safetensors.torch import load_model

        load_model(model, str(path / "model.safetensors"))
        if ema is not None:
            load_model(ema.module, str(path / "ema.safetensors"))
        state = torch.load(path / "optimizer.pt", weights_only=True, map_location="cpu")
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        info = json.loads((path / "state.json").read_text())
        return int(info["epoch"]), list(info["history"])
