"""Where studies live and how workers meet in one: storages, pruners, create-or-join.

A study lives in a shared storage (SQLite file, PostgreSQL/MySQL, or an Optuna journal file), so
any number of workers on any number of boxes add trials to it; its first trial is the config's
own values, so the study shows whether tuning beat them.
"""

from __future__ import annotations

import random
import re
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import optuna

from kaggle_style.config import config_dict
from kaggle_style.errors import UserError
from kaggle_style.files import git_commit
from kaggle_style.training.config import TrainConfig
from kaggle_style.tuning.space import Param, default_params

# Fields that may differ between workers (each box has its own paths) without changing a trial.
LOCAL_KEYS = frozenset(
    {
        "data",
        "folds_file",
        "crops_manifest",
        "cache_dir",
        "runs_dir",
        "num_workers",
        "progress",
        "tracker",
        "log_with",
        "name",
        "compile",
    }
)
BASE_CONFIG_ATTR = "base_config"  # set last when a study is created: joiners wait for it
SEARCH_SPACE_ATTR = "search_space"
DEFAULTS_ATTR = "defaults"  # user attr of the trial that runs the config's own values
JOURNAL_PREFIX = "journal://"


class TuneError(UserError):
    """A study that cannot be run or exported as asked."""


def slug(study_name: str) -> str:
    """The study name as a file or run name: anything but letters, digits, `_.-` becomes `_`."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", study_name)


def default_storage(study_name: str) -> str:
    return f"sqlite:///studies/{slug(study_name)}.db"


def masked(url: str) -> str:
    """The storage URL fit for logs: never a password."""
    if url.startswith(JOURNAL_PREFIX):
        return url
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL may still hold a secret: show only its scheme
        return url.split(":", 1)[0] + "://***"


def open_storage(
    url: str,
    heartbeat_interval: int | None = None,
    grace_period: int | None = None,
    max_retry: int | None = 3,
) -> optuna.storages.BaseStorage:
    """RDB storage (sqlite/postgresql/mysql URL) or a journal file (journal://PATH).

    On an RDB storage, workers record a heartbeat; a trial whose worker died (killed, box lost)
    is marked FAILED by the next worker to start a trial and queued again with the same values.
    Optuna's journal storage has no heartbeat (as of Optuna 5), so a dead worker's trial stays
    RUNNING there.
    """
    if url.startswith(JOURNAL_PREFIX):
        path = Path(url[len(JOURNAL_PREFIX) :])
        if not path.name:
            raise TuneError(f"{url}: a journal storage needs a file, e.g. journal:///shared/s.log")
        path.parent.mkdir(parents=True, exist_ok=True)
        from optuna.storages.journal import JournalFileBackend

        return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, IntegrityError, ProgrammingError

    try:
        parsed = make_url(url)
    except ArgumentError as err:
        raise TuneError(
            f"--storage {masked(url)}: not a storage URL; use sqlite:///FILE.db, "
            "postgresql+psycopg2://USER@HOST/DB or journal:///PATH.log"
        ) from err
    engine_kwargs: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # several local workers share the file: wait for its lock rather than fail
        engine_kwargs["connect_args"] = {"timeout": 60}
    kwargs: dict[str, Any] = {}
    if heartbeat_interval:
        kwargs = {
            "heartbeat_interval": heartbeat_interval,
            "grace_period": grace_period,
            **_retry_callback(max_retry),
        }

    def connect() -> optuna.storages.RDBStorage:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs, **kwargs)

    for attempt in range(5):
        try:
            return connect()
        except (IntegrityError, ProgrammingError):
            # Workers starting together on an empty database race to create Optuna's tables;
            # the losers find them made on the next try.
            time.sleep(0.2 + random.random() * (attempt + 1))
    return connect()


def _retry_callback(max_retry: int | None) -> dict[str, Any]:
    """The retry-on-stale-heartbeat callback under the name this Optuna version uses."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if hasattr(optuna.storages, "RetryHeartbeatStaleTrialCallback"):  # Optuna >= 4.9
            callback = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=max_retry)
            return {"heartbeat_stale_trial_callback": callback}
        return {"failed_trial_callback": optuna.storages.RetryFailedTrialCallback(max_retry)}


def make_pruner(
    kind: str, startup_trials: int = 5, warmup_steps: int = 0
) -> optuna.pruners.BasePruner:
    if kind == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=startup_trials, n_warmup_steps=warmup_steps
        )
    if kind == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=max(1, warmup_steps + 1))
    return optuna.pruners.NopPruner()


def open_study(
    storage: optuna.storages.BaseStorage,
    study_name: str,
    cfg: TrainConfig,
    space: Mapping[str, Param],
    *,
    sampler: optuna.samplers.BaseSampler | None = None,
    pruner: optuna.pruners.BasePruner | None = None,
    wait_s: float = 120.0,
) -> optuna.Study:
    """Create the study (first trial: the config's values) or join it once its creator is done.

    Not `create_study(load_if_exists=True)`: that hides which worker created the study, and the
    creator alone must queue the defaults trial (once, as trial 0). Creating is atomic in the
    storage, so of several workers starting together exactly one creates; it queues the defaults
    before it marks the study ready (the base config user attr), and joiners wait for that mark.
    """
    try:
        study = optuna.create_study(
            study_name=study_name,
            storage=storage,
            sampler=sampler,
            pruner=pruner,
            direction="minimize",
        )
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(
            study_name=study_name, storage=storage, sampler=sampler, pruner=pruner
        )
        _warn_if_different(_wait_for_base(study, wait_s), cfg)
        return study
    study.enqueue_trial(default_params(cfg, space), user_attrs={DEFAULTS_ATTR: True})
    study.set_user_attr(SEARCH_SPACE_ATTR, cfg.search_space)
    study.set_user_attr(BASE_CONFIG_ATTR, {**config_dict(cfg), "git_commit": git_commit()})
    return study


def load_tuned_study(
    storage: optuna.storages.BaseStorage, study_name: str, label: str = ""
) -> tuple[optuna.Study, dict[str, Any]]:
    """An existing study made by `kaggle-style tune`, with its base config."""
    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
    except KeyError as err:
        raise TuneError(
            f"no study {study_name!r} in {label or 'the storage'}; check --study and --storage"
        ) from err
    base = study.user_attrs.get(BASE_CONFIG_ATTR)
    if base is None:
        raise TuneError(
            f"study {study_name!r} has no '{BASE_CONFIG_ATTR}' user attr: not made "
            "by `kaggle-style tune`; use a study it made"
        )
    return study, base


def _wait_for_base(study: optuna.Study, wait_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + wait_s
    while True:
        base = study.user_attrs.get(BASE_CONFIG_ATTR)
        if base is not None:
            return base
        if time.monotonic() > deadline:
            raise TuneError(
                f"study {study.study_name!r} exists but has no '{BASE_CONFIG_ATTR}' user attr "
                f"after {wait_s:.0f} s: it was not made by `kaggle-style tune` (or its creator "
                "died); use another --study name"
            )
        time.sleep(0.5)


def _warn_if_different(base: Mapping[str, Any], cfg: TrainConfig) -> None:
    """A worker joining with another recipe would mix incomparable trials in one study."""
    mine = config_dict(cfg)
    differ = sorted(k for k in mine if k not in LOCAL_KEYS and k in base and base[k] != mine[k])
    if differ:
        warnings.warn(
            "this worker's config differs from the study's base config in "
            f"{', '.join(differ)}; its trials use this worker's values",
            stacklevel=3,
        )
