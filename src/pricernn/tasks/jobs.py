"""One task (a training run, a backtest) as a Hydra job, alone or in a sweep: threads per parallel job, and what a
failure does — one line and exit 2 alone; recorded in the run directory, and the sweep goes on, in a sweep."""

from __future__ import annotations

import json
import logging
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path

import torch
from omegaconf import DictConfig

from pricernn.errors import UserError, check, debug_enabled, first_line
from pricernn.files import write_atomic
from pricernn.tasks.resume import Interrupted
from pricernn.tasks.train import train

log = logging.getLogger("pricernn")


def launcher_threads(launcher: DictConfig | None) -> int | None:
    """Torch threads per run that keep a Hydra launcher's parallel runs off each other's cores: joblib's
    ``n_jobs`` runs share this machine's cores; a submitit task gets its ``cpus_per_task``; else None (no limit)."""
    launcher = launcher or {}
    if launcher.get("cpus_per_task"):
        return int(launcher.cpus_per_task)
    if launcher.get("n_jobs") is None:
        return None
    cores, n_jobs = os.cpu_count() or 1, int(launcher.n_jobs)
    jobs = min(cores, cores + 1 + n_jobs if n_jobs < 0 else n_jobs)  # joblib: -1 = all cores, -2 = all but one
    return max(1, cores // max(jobs, 1))


class RunFailed(Exception):
    """A sweep's run failed; raised to sweepers that record failures themselves (Optuna: a FAIL trial)."""


def run(
    cfg: DictConfig,
    run_dir: str | Path,
    multirun: bool = False,
    task: Callable = train,
    threads: int | None = None,
    sweeper: str = "",
) -> float:
    """Run ``task(cfg, run_dir)`` (training, or a backtest) and return ``cfg.optimized_metric`` for sweepers.
    A user error ends a single run with one line and exit status 2. Inside a sweep any failure is recorded in
    the run directory (failed.json, with the traceback in the job's log when it is not a user error) and the
    sweep goes on; the leaderboard lists it and the sweep's exit status says so. Hydra's basic sweeper would stop
    at a raised exception, so the run returns NaN to it; Optuna's (``sweeper`` names the sweeper's class) records
    a raised exception as a failed trial, and a returned NaN would stop it, so it gets :class:`RunFailed`.
    ``threads`` (from :func:`launcher_threads`) applies unless the config sets its own."""
    if threads and not cfg.get("threads"):
        torch.set_num_threads(threads)
    try:
        metrics = task(cfg, run_dir)
        if not metrics:  # a DDP process other than the first: it trained, the first one reports
            return math.nan
        metric = cfg.get("optimized_metric")
        check(
            metric in metrics,
            f"optimized_metric={metric} is not a metric of this run; e.g. val/loss_best, test/rmse, test/skill",
        )
        return metrics[metric]
    except Interrupted as stop:  # the user or the scheduler wants everything to stop, sweeps included
        print(f"{stop}", file=sys.stderr, flush=True)
        sys.exit(stop.exit_code)
    except Exception as err:
        if debug_enabled() or not (multirun or isinstance(err, UserError)):
            raise
        reason = str(err) if isinstance(err, UserError) else f"{type(err).__name__}: {first_line(err)}"
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        write_atomic(Path(run_dir) / "failed.json", json.dumps({"error": reason}) + "\n")  # the folder says why
        if not multirun:
            print(f"error: {err}", file=sys.stderr, flush=True)
            sys.exit(2)
        if isinstance(err, UserError):
            log.error("run failed: %s", reason)
        else:
            log.exception("run failed: %s", reason)
        if "optuna" in sweeper.lower():
            raise RunFailed(reason) from None
        return math.nan


def run_hydra_job(cfg: DictConfig, task: Callable = train) -> float:
    """:func:`run` inside a Hydra job: the output directory, mode, launcher and sweeper come from Hydra."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    hydra_cfg = HydraConfig.get()
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    threads, sweeper = launcher_threads(hydra_cfg.launcher), str(hydra_cfg.sweeper.get("_target_", ""))
    return run(cfg, hydra_cfg.runtime.output_dir, multirun, task, threads, sweeper)
