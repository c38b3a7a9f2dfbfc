"""`kaggle-style slurm-train` / `slurm-tune`: the folds of several recipes, or N tuning workers,
as Slurm jobs through submitit (`make train LAUNCHER=slurm`, `make tune LAUNCHER=slurm`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from kaggle_style.config import add_config_arguments, parse_overrides, resolve_config

MULTI_STAGE = True


def add_arguments(parser: argparse.ArgumentParser, stage: str = "slurm-train") -> None:
    if stage == "slurm-train":
        parser.add_argument(
            "--config",
            type=Path,
            action="append",
            required=True,
            dest="recipes",
            help="a recipe (configs/X.yaml) whose folds to "
            "submit; repeatable; the run is named after the file",
        )
        parser.add_argument(
            "--set",
            dest="overrides",
            nargs="+",
            default=[],
            metavar="KEY=VALUE",
            help="override keys of every recipe",
        )
        parser.add_argument("--data", help="DrivenData folder")
        parser.add_argument("--folds-file", help="folds file written by `kaggle-style folds`")
        parser.add_argument("--runs-dir")
    else:
        add_config_arguments(parser)
        parser.add_argument("--study", required=True, help="study name (every worker's)")
        parser.add_argument(
            "--storage",
            required=True,
            help="a storage every node reaches: postgresql+psycopg2://…, "
            "journal:///shared/path.log, or sqlite on a shared disk",
        )
        parser.add_argument("--n-trials", type=int, default=10, help="trials per worker")
        parser.add_argument("--workers", type=int, default=2, help="worker jobs to start")
    parser.add_argument("--slurm-config", type=Path, help="YAML of SlurmSettings keys")
    parser.add_argument(
        "--slurm",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="override SlurmSettings keys, e.g. --slurm qos=high",
    )
    parser.add_argument(
        "--launcher",
        choices=["slurm", "local"],
        help="local: submitit's local executor (processes on this box)",
    )
    parser.add_argument("--partition")
    parser.add_argument("--gpus-per-job", type=int)
    parser.add_argument("--time", type=int, dest="time_min", help="minutes per job")
    parser.add_argument("--mem", type=int, dest="mem_gb", help="GB of memory per job")
    parser.add_argument("--folder", help="submitit's files (default slurm/%%j; shared disk)")
    parser.add_argument("--wait", action="store_true", help="return when the jobs are done")


def run(args: argparse.Namespace, stage: str = "slurm-train") -> int:
    from kaggle_style.launch.settings import SlurmSettings
    from kaggle_style.launch.slurm import submit_training, submit_tuning

    settings = resolve_config(
        SlurmSettings,
        args.slurm_config,
        parse_overrides(args.slurm) if args.slurm else (),
        launcher=args.launcher,
        partition=args.partition,
        gpus_per_job=args.gpus_per_job,
        time_min=args.time_min,
        mem_gb=args.mem_gb,
        folder=args.folder,
    )
    if stage == "slurm-train":
        from kaggle_style.training.config import TrainConfig

        cfgs = [
            resolve_config(
                TrainConfig,
                recipe,
                args.overrides,
                name=recipe.stem,
                data=args.data,
                folds_file=args.folds_file,
                runs_dir=args.runs_dir,
                progress=False,
            )
            for recipe in args.recipes
        ]
        submit_training(cfgs, settings, wait=args.wait)
        return 0
    from kaggle_style.tuning.config import TuneConfig

    workers = [
        TuneConfig(
            study=args.study,
            storage=args.storage,
            config=args.config,
            overrides=args.overrides,
            n_trials=args.n_trials,
            sampler_seed=i,
            quiet=True,
        )
        for i in range(args.workers)
    ]
    submit_tuning(workers, settings, wait=args.wait)
    return 0
