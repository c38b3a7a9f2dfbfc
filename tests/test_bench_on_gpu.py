"""The benchmark on a real CUDA GPU (the `gpu` marker: skipped, saying so, where torch sees
none, as in CI). test_bench.py covers the same code on the CPU with a counting clock; here the
device path runs for real: bf16, channels-last, the card named. No timing asserts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from benchmarks.bench import BenchConfig, main, resolve
from benchmarks.data_path import DATA_PATHS


@pytest.mark.gpu
def test_auto_device_is_the_cuda_gpu_where_one_is_visible() -> None:
    assert resolve(BenchConfig()).device == "cuda"


@pytest.mark.gpu
def test_bench_on_a_cuda_gpu_trains_in_bf16_and_names_the_card(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "--device",
            "cuda",
            "--backbone",
            "test_resnet",
            "--image-size",
            "32",
            "--batch-size",
            "4",
            "--n-images",
            "12",
            "--epochs",
            "2",
            "--workers",
            "1",
            "--frame-size",
            "96x54",
            "--work-dir",
            str(tmp_path),
            "--json",
            "--data-paths",
            *DATA_PATHS,
        ]
    )
    assert code == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["device"] == "cuda" and result["gpu_name"] == torch.cuda.get_device_name()
    assert result["precision"] == "bf16" and result["channels_last"] is True
    assert list(result["paths"]) == list(DATA_PATHS)
    for name, path in result["paths"].items():
        assert path["e2e_train_img_s"] > 0 and path["e2e_infer_img_s"] > 0, name
