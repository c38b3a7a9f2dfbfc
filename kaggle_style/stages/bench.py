"""`kaggle-style bench`: model-only bound vs end-to-end images/s, measured in one run."""

from __future__ import annotations

import argparse
import json
from typing import Any

from kaggle_style.checks.bench import BenchConfig, run_bench


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backbone", help="timm model (default: resnet18 on CPU, "
                                           "convnext_tiny on CUDA)")
    parser.add_argument("--image-size", type=int, help="default: 96 on CPU, 224 on CUDA")
    parser.add_argument("--batch-size", type=int, help="default: 32 on CPU, 128 on CUDA")
    parser.add_argument("--n-images", type=int, help="JPEGs per epoch (default: 256 / 8192)")
    parser.add_argument("--workers", type=int, default=-1,
                        help="data-loader workers (default: the trainer's choice)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
    parser.add_argument("--normalize-on", choices=("auto", "worker", "device"), default="auto",
                        help="float normalisation in the workers, or uint8 batches normalised "
                             "on the device (auto: device on a GPU)")
    parser.add_argument("--epochs", type=int, help="end-to-end epochs, at least 2 (default 3 / 4)")
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
        epochs=args.epochs, tta_hflip=args.tta_hflip, normalize_on=args.normalize_on,
        work_dir=args.work_dir,
        frame_width=args.frame_size[0], frame_height=args.frame_size[1],
    )
    result = run_bench(cfg)
    print(format_table(result))
    if args.json:
        print(json.dumps(result))
    return 0


def format_table(result: dict[str, Any]) -> str:
    """The human-readable report: each end-to-end figure beside its bound."""
    r = result
    where = r["gpu_name"] or f"{r['cpu_count']} CPU cores"
    tta = "hflip TTA" if r["tta_hflip"] else "no TTA"
    rows = [
        ("model-only training (bound)", r["bound_train_img_s"], None),
        ("e2e training, epoch 1 (incl. cache build)", r["e2e_train_first_epoch_img_s"],
         f"{r['e2e_train_first_epoch_ratio']:.2f} of bound"),
        ("e2e training, epochs 2+", r["e2e_train_img_s"], f"{r['e2e_train_ratio']:.2f} of bound"),
        (f"model-only inference, {tta} (bound)", r["bound_infer_img_s"], None),
        (f"e2e inference, {tta}", r["e2e_infer_img_s"], f"{r['e2e_infer_ratio']:.2f} of bound"),
        (f"per worker: decode {r['frame_size']} JPEG + resize", r["decode_per_worker_img_s"], None),
        ("per worker: cache + augment + float normalise", r["cached_per_worker_img_s"],
         f"{r['cached_vs_decode_ratio']:.1f}x decode"),
        ("per worker: cache + augment, uint8 out", r["cached_uint8_per_worker_img_s"],
         f"{r['cached_uint8_vs_float_ratio']:.2f}x float"),
    ]
    lines = [
        f"bench {r['backbone']} @ {r['image_size']} px, batch {r['batch_size']} "
        f"(inference {r['infer_batch_size']}), {r['precision']}, {r['device']} ({where}), "
        f"{r['workers']} workers (normalise on {r['normalize_on']}), "
        f"{r['n_images']} images x {r['epochs']} epochs, "
        f"torch {r['torch']} ({r['torch_threads']} threads), load {r['load_avg_1m']:.1f}, "
        f"{r['date']}",
        f"{'':44}{'images/s':>10}",
    ]
    lines += [f"{name:44}{value:10.1f}  {note or ''}".rstrip() for name, value, note in rows]
    lines.append(f"cache build: {r['cache_build_s']:.1f} s (inside epoch 1)")
    return "\n".join(lines)
