"""`make gpu-check-lent PART=recipes`: each recipe of `fast` and `leaderboard` measured on a GPU.

Random weights (speed and memory do not depend on them), the recipe's real image size, batch,
accumulation and precision (bf16), the trainer's own optimisation step and optimizer, the
out-of-memory fallback: training images/s, inference images/s, peak memory, the batch that fit,
with and without gradient checkpointing for the large recipes, and minutes per fold worked out
from the real fold sizes. Each recipe's JSON line is written (and flushed) as it is measured,
so a cut-short call keeps what it measured.

    python -m benchmarks.recipe_gpu --out DIR [--seconds 15] [--sets fast leaderboard]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.recipe_check import build, optimizer_summary, recipes

# The real folds: 16,480 labelled images in 5 site-grouped folds, and the test set.
TRAIN_IMAGES, VAL_IMAGES, TEST_IMAGES = 13_184, 3_296, 4_464
# Samples per image by view: crops of a detection-holding frame (about 1.2 a frame, an
# estimate: docs/how-to/gpu-check.md), the full frame, or both (about 2.2).
VIEWS = {"full": 1.0, "crop": 1.2, "crop+full": 2.2}
LARGE = 200e6  # parameters above which a recipe is also measured with gradient checkpointing


def minutes_per_fold(cfg, train_ips: float, infer_ips: float) -> float:
    """Training epochs, a validation pass each epoch and one test pass (hflip TTA doubles the
    inference), from the measured rates."""
    views = VIEWS[cfg.view]
    tta = 2 if cfg.tta_hflip else 1
    train = TRAIN_IMAGES * views * cfg.epochs / train_ips
    infer = (VAL_IMAGES * views * cfg.epochs + TEST_IMAGES * views) * tta / infer_ips
    return (train + infer) / 60


def _figure(value: float) -> float:
    """Three significant figures: a CPU's 0.04 images/s keeps its size, an H100's 2,223 too."""
    return float(f"{value:.3g}")


def measure(
    name: str,
    path: Path,
    device: str,
    seconds: float,
    overrides: dict[str, Any],
    max_steps: int = 300,
) -> dict[str, Any]:
    """One recipe: warm-up steps, then steps for `seconds` (at most `max_steps`), then inference
    for `seconds / 3`."""
    import torch
    from accelerate import Accelerator

    from kaggle_style.task import CONSERVISION_CLASSES as CLASSES
    from kaggle_style.training.memory import MemoryFit
    from kaggle_style.training.recipe import (
        accelerator_settings,
        build_optimizer,
        optimisation_step,
    )

    cuda = device == "cuda"
    cfg, model, side = build(path, overrides)
    accelerator = Accelerator(
        **accelerator_settings(cuda, "bf16" if cuda else "no"),
        gradient_accumulation_steps=cfg.grad_accum,
    )
    if cuda:
        torch.cuda.reset_peak_memory_stats()
        model = model.to(memory_format=torch.channels_last)
    model = accelerator.prepare(model)
    optimizer, _, _ = build_optimizer(cfg, accelerator.unwrap_model(model), 1000, cuda)
    optimizer = accelerator.prepare(optimizer)
    fit = MemoryFit(cfg.batch_size, cfg.grad_accum, lambda line: print(f"{name}: {line}"))
    images = torch.randn(cfg.batch_size, 3, side, side, device=accelerator.device)
    soft = (
        torch.nn.functional.one_hot(torch.arange(cfg.batch_size) % len(CLASSES), len(CLASSES))
        .float()
        .to(accelerator.device)
    )
    weights = torch.ones(len(CLASSES), device=accelerator.device)
    if cuda:
        images = images.contiguous(memory_format=torch.channels_last)

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    def step() -> None:
        fit.run(
            lambda chunks: optimisation_step(
                model, optimizer, accelerator, images, soft, weights, chunks
            ),
            optimizer,
            model,
        )

    model.train()
    for _ in range(3):  # warm-up: kernels chosen, optimizer state made, memory settled
        step()
    sync()
    steps, started = 0, time.perf_counter()
    while steps < max_steps and time.perf_counter() - started < seconds:
        step()
        steps += 1
    sync()
    train_ips = steps * cfg.batch_size / (time.perf_counter() - started)
    model.eval()
    batch = images[: max(1, fit.micro_batch)].repeat(2, 1, 1, 1)  # inference runs 2x the batch
    passes, started = 0, time.perf_counter()
    with torch.no_grad(), accelerator.autocast():
        model(batch)
        sync()
        started = time.perf_counter()
        while time.perf_counter() - started < seconds / 3:
            model(batch)
            passes += 1
        sync()
    infer_ips = passes * batch.shape[0] / (time.perf_counter() - started)
    # the minutes are worked out from the rates as printed, so the line can be checked by hand
    train_ips, infer_ips = _figure(train_ips), _figure(infer_ips)
    line = {
        "recipe": name,
        "device": torch.cuda.get_device_name() if cuda else "cpu",
        "image_size": side,
        "view": cfg.view,
        "epochs": cfg.epochs,
        "batch_size": cfg.batch_size,
        "grad_accum": cfg.grad_accum,
        "grad_checkpointing": cfg.grad_checkpointing,
        "batch_fit": fit.record(),
        "train_steps": steps,
        "train_images_per_s": train_ips,
        "infer_images_per_s": infer_ips,
        "peak_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else None,
        "minutes_per_fold": _figure(minutes_per_fold(cfg, train_ips, infer_ips)),
        "parameters": sum(p.numel() for p in model.parameters()),
        "optimizer": optimizer_summary(optimizer),
    }
    accelerator.free_memory()
    return line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for recipes.jsonl")
    parser.add_argument("--sets", nargs="+", default=["fast", "leaderboard"])
    parser.add_argument("--seconds", type=float, default=15.0, help="timed training per recipe")
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument(
        "--set",
        dest="overrides",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="override every recipe (CPU smoke: backbone=test_vit image_size=32)",
    )
    parser.add_argument("--max-steps", type=int, default=300)
    args = parser.parse_args(argv)
    from kaggle_style.config import parse_overrides

    overrides = parse_overrides(args.overrides)
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / "recipes.jsonl"
    started = time.time()
    for name, found in recipes(args.sets).items():
        variants = [False]  # and with gradient checkpointing where the model is large
        for checkpointing in variants:
            try:
                line = measure(
                    name,
                    found["path"],
                    args.device,
                    args.seconds,
                    {**overrides, "grad_checkpointing": checkpointing},
                    args.max_steps,
                )
                if not checkpointing and line["parameters"] > LARGE:
                    variants.append(True)
            except Exception as err:  # one recipe's failure must not lose the others' figures
                line = {
                    "recipe": name,
                    "grad_checkpointing": checkpointing,
                    "error": f"{type(err).__name__}: {err}"[:300],
                }
            line.update(
                sets=found["sets"],
                date=time.strftime("%Y-%m-%d"),
                elapsed_s=round(time.time() - started, 1),
            )
            with out.open("a") as f:
                f.write(json.dumps(line) + "\n")
            print(json.dumps(line), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
