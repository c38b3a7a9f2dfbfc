"""`make recipe-check` (slow: every recipe at its real size) and the GPU recipes part's code path
on the CPU with timm's test models (seconds)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import recipe_check, recipe_gpu
from kaggle_style.config import resolve_config
from kaggle_style.training.config import TrainConfig


@pytest.mark.slow
def test_recipe_check_prints_a_line_for_every_recipe_of_every_set(capsys):
    expected = recipe_check.recipes()
    assert recipe_check.main(["--threads", "2"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["recipe"] for line in lines] == list(expected)
    for line in lines:
        cfg = resolve_config(TrainConfig, expected[line["recipe"]]["path"])
        assert line["image_size"] == (cfg.image_size or line["image_size"])
        assert line["settings"]["layer_decay"] == cfg.layer_decay
        groups = line["optimizer"]
        assert groups["lr_scale_max"] == pytest.approx(cfg.head_lr_mult)
        assert (groups["lr_scale_min"] < 1.0) == (cfg.layer_decay not in (None, 1.0))
        assert 0 < groups["params_no_decay"] < line["parameters"]


def test_gpu_recipes_part_runs_its_code_path_on_cpu(tmp_path: Path, monkeypatch):
    """Every fast and leaderboard recipe, its backbone swapped for a timm test model at 32 px;
    a step over 2 images runs out of memory, so the fallback is measured too."""
    import torch

    import kaggle_style.training.recipe as recipe

    real_loss = recipe.soft_cross_entropy

    def tight_memory(logits, targets, weights):
        if logits.shape[0] > 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 1.00 GiB")
        return real_loss(logits, targets, weights)

    monkeypatch.setattr(recipe, "soft_cross_entropy", tight_memory)
    assert (
        recipe_gpu.main(
            [
                "--out",
                str(tmp_path),
                "--device",
                "cpu",
                "--seconds",
                "0.2",
                "--max-steps",
                "2",
                "--set",
                "backbone=test_convnext",
                "image_size=32",
                "batch_size=4",
            ]
        )
        == 0
    )
    lines = [json.loads(x) for x in (tmp_path / "recipes.jsonl").read_text().splitlines()]
    expected = recipe_check.recipes(["fast", "leaderboard"])
    assert [line["recipe"] for line in lines] == list(expected)
    for line in lines:
        assert "error" not in line, line
        assert line["batch_fit"] == {"micro_batch": 2, "grad_accum": 2 * line["grad_accum"]}
        assert line["train_steps"] <= 2 and line["image_size"] == 32
        cfg = resolve_config(TrainConfig, expected[line["recipe"]]["path"])
        want = recipe_gpu.minutes_per_fold(
            cfg, line["train_images_per_s"], line["infer_images_per_s"]
        )
        assert line["minutes_per_fold"] == pytest.approx(want, rel=0.01)  # rates are rounded
