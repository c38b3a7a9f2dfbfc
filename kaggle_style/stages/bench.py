"""`kaggle-style bench`: model-only bound vs end-to-end images/s, measured in one run."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from kaggle_style.checks.bench import BenchConfig, run_bench
from kaggle_style.checks.data_path import DATA_PATHS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backbone", help="timm model (default: resnet18 on CPU, "
                                           "convnext_tiny on CUDA)")
    parser.add_argument("--image-size", type=int, help="default: 96 on CPU, 224 on CUDA")
    parser.add_argument("--batch-size", type=int, help="default: 32 on CPU, 128 on CUDA")
    parser.add_argument("--n-images", type=int, help="JPEGs per epoch (default: 256 on CPU; "
                        "on CUDA 13,184, one real training fold)")
    parser.add_argument("--workers", type=int, default=-1,
                        help="data-loader workers (default: the trainer's choice)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
    parser.add_argument("--data-paths", nargs="+", choices=DATA_PATHS,
                        help="float: workers augment and normalise; uint8: uint8 batches "
                             "normalised on the device; uint8+device_augment: flips and jitter "
                             "on the device too (default: all three on a GPU, float on a CPU)")
    parser.add_argument("--epochs", type=int, help="end-to-end epochs, at least 2 (default 3)")
    parser.add_argument("--no-tta", dest="tta_hflip", action="store_false",
                        help="inference without the horizontal-flip TTA")
    parser.add_argument("--frame-size", type=_frame_size, default=(960, 540), metavar="WxH",
                        help="size of the generated JPEGs (default 960x540, the real frames')")
    parser.add_argument("--work-dir", default=BenchConfig.work_dir,
                        help="where generated frames are kept between runs")
    parser.add_argument("--json", action="store_true",
                        help="end with one line of JSON holding every figure")


def _frame_size(text: str) -> tuple[int, int]:
    width, sep, height = text.lower().partition("x")
    if not (sep and width.isdigit() and height.isdigit()) or min(int(width), int(height)) < 32:
        raise argparse.ArgumentTypeError(f"{text!r} is not WxH with both sides at least 32")
    return int(width), int(height)


def run(args: argparse.Namespace) -> int:
    cfg = BenchConfig(
        backbone=args.backbone, image_size=args.image_size, batch_size=args.batch_size,
        n_images=args.n_images, workers=args.workers, device=args.device, compile=args.compile,
        epochs=args.epochs, tta_hflip=args.tta_hflip,
        data_paths=tuple(args.data_paths) if args.data_paths else None,
        work_dir=args.work_dir,
        frame_width=args.frame_size[0], frame_height=args.frame_size[1],
    )
    # each figure on stderr as it is measured: a run cut short by a time limit still tells them
    result = run_bench(cfg, note=lambda line: print(line, file=sys.stderr, flush=True))
    print(format_table(result))
    if args.json:
        print(json.dumps(result))
    return 0


def format_table(result: dict[str, Any]) -> str:
    """The human-readable report: each data path's end-to-end figures beside the bounds, then
    what could cap them (per-worker rates, the transport of ready batches)."""
    r = result
    where = r["gpu_name"] or f"{r['cpu_count']} CPU cores"
    tta = "hflip TTA" if r["tta_hflip"] else "no TTA"
    rows = [("model-only training (bound)", r["bound_train_img_s"], ""),
            (f"model-only inference, {tta} (bound)", r["bound_infer_img_s"], "")]
    for name, p in r["paths"].items():
        rows += [
            (f"[{name}] e2e training, epochs 2+", p["e2e_train_img_s"],
             f"{p['e2e_train_ratio']:.2f} of bound"),
            (f"[{name}] e2e inference, {tta}", p["e2e_infer_img_s"],
             f"{p['e2e_infer_ratio']:.2f} of bound"),
            (f"[{name}] per worker (cache, transform, collate)", p["per_worker_img_s"], ""),
            (f"[{name}] predicted ceiling", p["predicted_ceiling_img_s"],
             f"{p['predicted_ceiling_vs_train_bound']:.2f} of training bound"),
        ]
    in_row = r["in_row"]
    if in_row is not None:
        rows.append((f"[{in_row['data_path']}] e2e training, one iterator across epochs",
                     in_row["e2e_train_img_s"], f"{in_row['e2e_train_ratio']:.2f} of bound, "
                     f"{in_row['vs_new_iterator_each_epoch']:.2f}x a new one each epoch"))
    transport = r["transport_img_s"]
    rows += [
        (f"per worker: decode {r['frame_size']} JPEG + resize", r["decode_per_worker_img_s"], ""),
        (f"transport, float32 batches ({r['transport_workers']} workers)", transport["float32"],
         ""),
        (f"transport, uint8 batches ({r['transport_workers']} workers)", transport["uint8"],
         f"{r['transport_uint8_vs_float32']:.1f}x float32"),
    ]
    lines = [
        f"bench {r['backbone']} @ {r['image_size']} px, batch {r['batch_size']} "
        f"(inference {r['infer_batch_size']}), {r['precision']}, {r['device']} ({where}), "
        f"{r['workers']} workers, {r['n_images']} images x {r['epochs']} epochs, "
        f"torch {r['torch']} ({r['torch_threads']} threads), load {r['load_avg_1m']:.1f}, "
        f"{r['date']}",
        f"{'':60}{'images/s':>10}",
    ]
    lines += [f"{name:60}{value:10.1f}  {note}".rstrip() for name, value, note in rows]
    lines.append(f"cache build: {r['cache_build_s']:.1f} s; best training path: {r['best_path']}")
    return "\n".join(lines)
