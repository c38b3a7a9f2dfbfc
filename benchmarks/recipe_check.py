"""`make recipe-check`: every recipe of every set builds, steps once and says what it is.

For each recipe named by `configs/sets/*.yaml`: the model at its real image size with random
weights (`pretrained: false`), the trainer's own optimizer groups, one forward + backward +
optimizer step at a tiny batch on the CPU, and one JSON line: parameters, optimizer groups (how
many parameters take no weight decay, the smallest and largest learning-rate scale), the cache's
bytes per 1,000 images and the resolved settings. Nothing is downloaded and no data is read.

    python -m benchmarks.recipe_check [--sets fast leaderboard] [--threads 2] [--batch 2]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# Keys that say nothing about the recipe itself (paths, workers, progress).
SKIPPED = {
    "name",
    "data",
    "folds_file",
    "runs_dir",
    "cache_dir",
    "crops_manifest",
    "search_space",
    "num_workers",
    "progress",
    "folds",
    "resume",
    "log_with",
}


def recipes(sets: list[str] | None = None, root: Path = ROOT) -> dict[str, dict[str, Any]]:
    """recipe name -> {"path", "sets"} for the named sets (default: every set)."""
    from kaggle_style.sets import available_sets, load_set

    found: dict[str, dict[str, Any]] = {}
    for name in sets or available_sets(root):
        for model, path in load_set(name, root).model_configs.items():
            found.setdefault(model, {"path": path, "sets": []})["sets"].append(name)
    return found


def build(path: Path, overrides: dict[str, Any] | None = None):
    """(config, model, input side) of a recipe with random weights, as the trainer builds it."""
    from kaggle_style.config import resolve_config
    from kaggle_style.models import create_model, data_config
    from kaggle_style.task import CONSERVISION_CLASSES as CLASSES
    from kaggle_style.training.config import TrainConfig
    from kaggle_style.training.memory import grad_checkpointing

    cfg = resolve_config(TrainConfig, path, {"pretrained": False, **(overrides or {})})
    model = create_model(
        cfg.backbone,
        len(CLASSES),
        False,
        image_size=cfg.image_size,
        drop_rate=cfg.drop_rate,
        drop_path_rate=cfg.drop_path_rate,
    )
    grad_checkpointing(model, cfg.grad_checkpointing, cfg.backbone)
    side = int(data_config(model, cfg.image_size)["input_size"][-1])
    return cfg, model, side


def optimizer_summary(optimizer) -> dict[str, Any]:
    groups = optimizer.param_groups
    scales = [g.get("lr_scale", 1.0) for g in groups]
    return {
        "groups": len(groups),
        "params_no_decay": sum(
            p.numel() for g in groups if g["weight_decay"] == 0 for p in g["params"]
        ),
        "tensors_no_decay": sum(len(g["params"]) for g in groups if g["weight_decay"] == 0),
        "lr_scale_min": min(scales),
        "lr_scale_max": max(scales),
    }


def check(name: str, path: Path, batch: int) -> dict[str, Any]:
    import torch

    from kaggle_style.config import config_dict
    from kaggle_style.data.images import cache_size_for, estimate_bytes
    from kaggle_style.task import CONSERVISION_CLASSES as CLASSES
    from kaggle_style.training.recipe import build_optimizer, soft_cross_entropy

    started = time.perf_counter()
    cfg, model, side = build(path)
    optimizer, _, _ = build_optimizer(cfg, model, steps_per_epoch=1, use_cuda=False)
    model.train()
    images = torch.randn(batch, 3, side, side)
    targets = torch.nn.functional.one_hot(torch.arange(batch) % len(CLASSES), len(CLASSES))
    loss = soft_cross_entropy(model(images), targets.float(), torch.ones(len(CLASSES)))
    loss.backward()
    optimizer.step()
    cache_side = cache_size_for(side, cfg.cache_scale)
    return {
        "recipe": name,
        "image_size": side,
        "parameters": sum(p.numel() for p in model.parameters()),
        "optimizer": optimizer_summary(optimizer),
        "cache_side": cache_side,
        "cache_bytes_per_1000_images": estimate_bytes(1000, cache_side, cfg.cache_form),
        "loss": round(loss.item(), 4),
        "seconds": round(time.perf_counter() - started, 1),
        "settings": {k: v for k, v in config_dict(cfg).items() if k not in SKIPPED},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", help="set names (default: every set)")
    parser.add_argument("--batch", type=int, default=2, help="images in the one step")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    for name, found in recipes(args.sets).items():
        line = {
            **check(name, found["path"], args.batch),
            "sets": found["sets"],
            "threads": args.threads,
        }
        print(json.dumps(line), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
