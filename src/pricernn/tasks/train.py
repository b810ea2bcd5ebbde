"""The training pipeline, as :func:`train` reads: prepare the run, build the data, the model, the logger and the
trainer, fit, score the best checkpoint, write the run's artifacts; each step is one function below.

:func:`train` is a plain function that tests call with a composed config and a directory; ``scripts/train.py``
runs it as a Hydra job through :mod:`pricernn.tasks.jobs`.
"""

from __future__ import annotations

import logging
import os
import shlex
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import ModelCheckpoint, ProgressBar, TQDMProgressBar
from pytorch_lightning.loggers import TensorBoardLogger
from pytorch_lightning.trainer.states import TrainerStatus
from pytorch_lightning.utilities import rank_zero_only

from pricernn.checkpoints import add_to_checkpoint, check_resumable, config_record, fit_weights, read_checkpoint
from pricernn.config.validate import validate
from pricernn.data import PriceDataModule
from pricernn.data.frequency import bar_word
from pricernn.errors import check
from pricernn.files import write_atomic, write_json
from pricernn.forecasting.combination import Combination
from pricernn.forecasting.multistep import path_blockers, scored_steps, validation_combination, validation_errors
from pricernn.models import RecurrentForecaster
from pricernn.reporting.dashboard import dataset_name, report_texts, set_status, start_session, write_report
from pricernn.reporting.plots import render
from pricernn.reporting.pooled import panel_report
from pricernn.reporting.report import NAMES, Report, build_report
from pricernn.reporting.summary import interval_label, summary
from pricernn.tasks.callbacks import EpochLines, RandomState, TrainingDiverged
from pricernn.tasks.resume import Interrupted, interrupted

log = logging.getLogger("pricernn")

# Batches here are tensor slices made in the main process; worker processes would only add overhead.
warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
# Training loss is logged per epoch, not per step, so Lightning's logging interval does not apply.
warnings.filterwarnings("ignore", message=r".*is smaller than the logging interval.*")
# A resumed run writes on into its own checkpoint folder, which is meant to be non-empty.
warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
# Lightning 2.6 advertises a cloud logger at every fit: not information about the run.
logging.getLogger("pytorch_lightning.utilities.rank_zero").addFilter(lambda r: "litlogger" not in r.getMessage())
# Lightning 2.6 calls a torch pytree API that torch 2.10+ deprecates; harmless, and not ours to fix.
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)` is deprecated.*")


def run_name(cfg: DictConfig) -> str:
    """A readable TensorBoard run name from the choices that tell runs apart, e.g. ``sp500/gru_w60_hs64_l2``."""
    data, model = cfg.data, cfg.model
    name = f"{model.cell}_w{data.window}_hs{model.hidden_size}_l{model.num_layers}"
    if data.horizon != 1:
        name += f"_H{data.horizon}"
    return f"{dataset_name(cfg)}/{name}"


def run_label(run_dir: Path, save_dir: str | Path, name: str) -> str:
    """The TensorBoard version of a run: its directory's name (a sweep's job number with the sweep's folder, as
    in ``outputs/multirun/<sweep>/<job>``), so a curve leads to its checkpoints; a time stamp is added where that
    name is taken already (the same run directory used twice)."""
    run_dir = run_dir.resolve()
    label = f"{run_dir.parent.name}/{run_dir.name}" if run_dir.name.isdigit() else run_dir.name
    return label if not (Path(save_dir) / name / label).exists() else f"{label}_{time_stamp()}"


def time_stamp() -> str:
    """Microsecond time stamps name runs, so parallel runs never collide."""
    return datetime.now().strftime("%Y-%m-%d_%H-%M-%S_%f")


def shown_path(path: str | Path) -> str:
    """A path as the user typed paths: relative to the working directory when it lies below it."""
    path = Path(path).resolve()
    return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else str(path)


def train(
    cfg: DictConfig, run_dir: str | Path, tb_name: str | None = None, tb_version: str | None = None
) -> dict[str, float]:
    """Fit one model as ``cfg`` says, score its best checkpoint on the test period, write the artifacts to
    ``run_dir`` (config.yaml, checkpoints/, metrics.json, predictions.csv, horizons.csv, figures) and return
    the metrics. TensorBoard logs go to ``<logger.save_dir>/<tb_name>/<tb_version>`` (by default the
    :func:`run_name` and :func:`run_label`, the run directory's name)."""
    entered = time.perf_counter()
    cfg, run_dir, resumed = prepare_run(cfg, run_dir)
    datamodule = build_data(cfg)
    model = build_model(cfg, datamodule, resumed)
    logger = build_logger(cfg, run_dir, resumed, tb_name, tb_version)
    with ended_session(logger):
        trainer = build_trainer(cfg, run_dir, resumed, logger)
        timings = {"setup_seconds": time.perf_counter() - entered}
        timings["train_seconds"] = fit(cfg, trainer, model, datamodule, run_dir)
        if trainer.global_rank > 0:  # under DDP the first process alone scores and writes the artifacts
            return {}
        fitted = time.perf_counter()
        scored = score(cfg, trainer, model, datamodule)
        return write_run(cfg, run_dir, trainer, model, datamodule, scored, {**timings, "fitted": fitted})


def prepare_run(cfg: DictConfig, run_dir: str | Path) -> tuple[DictConfig, Path, dict | None]:
    """The validated config, the run directory (made, its config.yaml written) and the checkpoint to resume (read
    and refused before anything is written); threads, devices and seeds set as the config says."""
    cfg = validate(cfg)
    resumed = read_checkpoint(cfg.resume) if cfg.get("resume") else None
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    print(f"run directory: {shown_path(run_dir)}", flush=True)
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    if cfg.trainer.get("accelerator") in ("gpu", "cuda"):
        check(
            torch.cuda.is_available(), f"trainer.accelerator={cfg.trainer.accelerator}: no CUDA device is visible here"
        )
    if cfg.trainer.get("deterministic") and torch.cuda.is_available():
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuDNN RNNs need it to be deterministic
    # Deterministic mode also fills every new tensor with NaN, a guard against kernels that read memory they
    # never wrote. Ours do not (the same seed gives bit-equal weights without it), and the fill cost 8-15 %
    # of an LSTM step on the CPU (scripts/benchmark.py): the deterministic kernels stay, the fill goes.
    torch.utils.deterministic.fill_uninitialized_memory = False
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    if rank_zero_only.rank == 0:
        OmegaConf.save(cfg, run_dir / "config.yaml", resolve=True)
    return cfg, run_dir, resumed


def build_data(cfg: DictConfig) -> PriceDataModule:
    """The data module, set up: the series loaded, split and windowed, the normaliser fitted on training data."""
    # a direct or auto model forecasts every evaluated horizon at once: its windows carry that many targets
    horizon = int(cfg.evaluation.steps) if cfg.model.strategy != "recursive" else int(cfg.data.horizon)
    datamodule = PriceDataModule(**{**cfg.data, "horizon": horizon})
    datamodule.setup()
    blockers = path_blockers(datamodule.transform_state())  # auto's recursive network is fed its forecasts
    check(
        cfg.model.strategy != "auto" or horizon == 1 or not blockers,
        f"model.strategy=auto weighs a recursive network against a direct one, and a recursive forecast cannot be "
        f"fed this model's inputs {', '.join(blockers)}, which it does not forecast: use model.strategy=direct",
    )
    return datamodule


def build_model(cfg: DictConfig, datamodule: PriceDataModule, resumed: dict | None) -> RecurrentForecaster:
    """The network for these data, carrying their contract; a resumed run's weights, once its settings and data
    are checked to be the checkpoint's."""
    contract = datamodule.transform_state()
    if resumed is not None:
        check_resumable(cfg.resume, resumed, cfg, contract)
    model = RecurrentForecaster(
        n_features=datamodule.n_features,
        n_series=datamodule.series.n_series,
        horizon=datamodule.horizon,
        transform=contract,
        loss_weights=datamodule.loss_weights() if datamodule.horizon > 1 else None,
        **cfg.model,
    )
    if resumed is not None:  # Lightning would load them with a traceback; the settings matched, so must they
        fit_weights(model, resumed["state_dict"], f"resume={cfg.resume}")
    model.run_config = config_record(cfg, contract)
    return model


def build_logger(
    cfg: DictConfig, run_dir: Path, resumed: dict | None, tb_name: str | None, tb_version: str | None
) -> TensorBoardLogger:
    """The run's TensorBoard logger, its session (HParams) started; a resumed run continues its own run's."""
    name = tb_name or run_name(cfg)
    tb = {"name": name, "version": tb_version or run_label(run_dir, cfg.logger.save_dir, name)}
    if resumed is not None:
        tb.update(resumed.get("pricernn_run", {}))  # the interrupted run's, so the curves go on
    logger = instantiate(cfg.logger, **tb)
    if resumed is None and rank_zero_only.rank == 0:
        start_session(logger.experiment, cfg, run_dir)
    return logger


@contextmanager
def ended_session(logger: TensorBoardLogger) -> Iterator[None]:
    """The run's TensorBoard session ends with a status whatever happens inside: a failure says why; an
    interruption leaves none until the resumed run ends (TensorBoard shows "unknown"); a success is set by
    :func:`write_run`."""
    try:
        yield
    except Interrupted as stop:
        if rank_zero_only.rank == 0:
            set_status(logger.log_dir, None, note=str(stop))
        raise
    except BaseException as err:
        if rank_zero_only.rank == 0:
            set_status(logger.log_dir, "failure", note=f"failed: {err}")
        raise


def build_trainer(cfg: DictConfig, run_dir: Path, resumed: dict | None, logger: TensorBoardLogger) -> pl.Trainer:
    """Lightning's trainer with the configured callbacks; a resumed run writes on into the interrupted run's
    checkpoint folder, so it remembers its best epoch."""
    checkpoint_dir = Path(cfg.resume).resolve().parent if resumed is not None else run_dir / "checkpoints"
    callbacks = build_callbacks(cfg, checkpoint_dir)
    return pl.Trainer(**cfg.trainer, logger=logger, callbacks=callbacks, default_root_dir=str(run_dir))


def build_callbacks(cfg: DictConfig, checkpoint_dir: Path) -> list[pl.Callback]:
    """The configured callbacks, checkpoints written to ``checkpoint_dir``, and RandomState (exact resume)."""
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c is not None]
    if cfg.trainer.get("enable_progress_bar") is False:  # the configured bar goes too, as Lightning insists
        callbacks = [c for c in callbacks if not isinstance(c, ProgressBar)]
    elif not sys.stdout.isatty():  # a file, pipe, SLURM or CI log: a line an epoch, not a bar's redraws
        callbacks = [EpochLines() if isinstance(c, TQDMProgressBar) else c for c in callbacks]
    for callback in callbacks:
        if isinstance(callback, ModelCheckpoint):
            callback.dirpath = callback.dirpath or str(checkpoint_dir.resolve())
    return [*callbacks, RandomState()]


def fit(cfg: DictConfig, trainer: pl.Trainer, model: RecurrentForecaster, datamodule: PriceDataModule,
        run_dir: Path) -> float:  # fmt: skip
    """Train (from the resumed checkpoint, if any) and return the seconds it took. Ctrl-C or SIGTERM ends in a
    resumable record (pricernn.tasks.resume); a diverging loss names the best checkpoint kept so far."""
    started = time.perf_counter()
    try:
        trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("resume"), weights_only=True)
    except SystemExit as stop:  # Lightning's graceful stop: Ctrl-C (exit 1) or SIGTERM (SIGTERMException)
        if trainer.state.status != TrainerStatus.INTERRUPTED:
            raise
        best, last = checkpoint_path(trainer, "best"), checkpoint_path(trainer, "last")
        raise interrupted(stop, trainer, best, last, run_dir) from None
    except TrainingDiverged as err:
        kept = checkpoint_path(trainer, "best")
        raise TrainingDiverged(f"{err}; best checkpoint so far: {kept or 'none (no epoch finished)'}") from None
    return time.perf_counter() - started


def checkpoint_path(trainer: pl.Trainer, filename: str) -> str | None:
    """The file the checkpoint callback named ``filename`` (best, last) last wrote, if any."""
    found = [c for c in trainer.checkpoint_callbacks if c.filename == filename]
    return (found[0].best_model_path or None) if found else None


@dataclass(frozen=True)
class Outcome:
    """What scoring the best checkpoint gives: its file, the report, the per-horizon combination the validation
    period supports (stored in the checkpoint, so forecasts from it are combined alike) and the horizons scored."""

    best: str | None
    report: Report
    combination: Combination
    steps: int
    validation: pd.DataFrame  # the network's next-step forecasts on validation (what a sweep compares)


def score(cfg: DictConfig, trainer: pl.Trainer, model: RecurrentForecaster, datamodule: PriceDataModule) -> Outcome:
    """The best checkpoint's weights, combined per horizon as the validation period supports, scored on the test
    period (each asset of a panel alone, then pooled)."""
    best = checkpoint_path(trainer, "best")
    load_best(model, best)
    steps = scored_steps(model, cfg.evaluation.steps)
    if steps < int(cfg.evaluation.steps):
        log.warning("evaluation.steps=%d: scored up to h=%d only, the model's horizon: a recursive forecast cannot be "
                    "fed its inputs %s; model.strategy=direct forecasts every horizon", cfg.evaluation.steps, steps,
                    ", ".join(path_blockers(model.hparams.transform)))  # fmt: skip
    levels = tuple(cfg.evaluation.intervals)
    combination, calibrations = validation_combination(
        model, datamodule, steps, cfg.evaluation.shrink, levels, cfg.evaluation.get("drift", False)
    )
    evaluation = {k: v for k, v in cfg.evaluation.items() if k not in ("shrink", "drift", "intervals")}
    if datamodule.series.n_series > 1:
        report = panel_report(model, datamodule, combination, calibrations, title=run_name(cfg), **evaluation)
    else:
        calibration = calibrations[0] if calibrations else None
        report = build_report(model, datamodule, combination, calibration, title=run_name(cfg), **evaluation)
    return Outcome(best, report, combination, steps, validation_errors(model, datamodule))


def write_run(
    cfg: DictConfig,
    run_dir: Path,
    trainer: pl.Trainer,
    model: RecurrentForecaster,
    datamodule: PriceDataModule,
    scored: Outcome,
    timings: dict[str, float],
) -> dict[str, float]:
    """The run's artifacts, its TensorBoard report and status, and the lines it ends with; returns the metrics.
    ``timings``: the seconds of setup and training, and when the fit ended (``fitted``, a perf_counter)."""
    report, best = scored.report, scored.best
    if best:
        add_to_checkpoint(
            best, {"pricernn_forecast": scored.combination.to_dict(), "pricernn_intervals": report.intervals}
        )
    metrics = report.metrics
    metrics.update(
        {
            "val/loss_best": float(model.val_loss_best),
            "val/rmse_best": float(model.val_rmse_best),
            "epochs": int(trainer.current_epoch),
            "setup_seconds": round(timings["setup_seconds"], 3),
            "train_seconds": round(timings["train_seconds"], 3),
            "params": int(sum(p.numel() for p in model.parameters() if p.requires_grad)),
            "threads": torch.get_num_threads(),
        }
    )
    text = summary(metrics, datamodule.split_dates["test"], datamodule.target, bar_word(datamodule.frequency),
                   interval_label(cfg.evaluation.interval_method, cfg.model.loss))  # fmt: skip
    images = {f"test/{k.removeprefix('test_')}": render(f, run_dir / f"{k}.png") for k, f in report.figures.items()}
    texts = report_texts(metrics, report.horizons, text, {k: v for k, v in NAMES.items() if f"{k}/rmse" in metrics})
    log_dir = trainer.logger.log_dir
    write_report(log_dir, metrics, trainer.global_step, texts, images)
    trainer.logger.finalize("success")
    set_status(log_dir, "success", note=f"finished: {metrics['epochs']} epochs, step {trainer.global_step}; "
               f"results in `{run_dir.resolve()}`")  # fmt: skip

    metrics["test_seconds"] = round(time.perf_counter() - timings["fitted"], 3)  # scoring and artifacts
    extra = {"best_checkpoint": best, "split_dates": datamodule.split_dates, "tensorboard_dir": log_dir}
    extra["combination"] = scored.combination.to_dict()  # per horizon: the strategy, the weight on the model
    write_json(run_dir / "metrics.json", {**metrics, **extra})
    write_atomic(run_dir / "predictions.csv", report.predictions.to_csv(index=False))
    write_atomic(run_dir / "horizons.csv", report.horizons.to_csv(index=False, float_format="%.6g"))
    write_atomic(run_dir / "validation.csv", scored.validation.to_csv(index=False, float_format="%.10g"))
    if report.per_symbol is not None:
        write_atomic(run_dir / "per_symbol.csv", report.per_symbol.to_csv(index=False, float_format="%.6g"))
    write_atomic(run_dir / "summary.txt", text + "\n")  # what the run printed, kept beside its numbers
    print(text, flush=True)
    files = ["summary.txt", "metrics.json", "predictions.csv", "horizons.csv", "validation.csv"]
    files += ["per_symbol.csv"] * (report.per_symbol is not None) + [f"{name}.png" for name in report.figures]
    reach = scored.steps if path_blockers(model.hparams.transform) else None  # as far as predict.py can forecast
    print(where_things_are(run_dir, best, log_dir, cfg.logger.save_dir, files, reach), flush=True)
    return metrics


def where_things_are(
    run_dir: Path, best: str | None, log_dir: str, save_dir: str, files: list[str], reach: int | None = None
) -> str:
    """The closing lines of a run: where its results are and the commands that use them (paths quoted where a
    shell needs it, relative to the working directory where they lie below it); ``reach``: the most steps a model
    that cannot be fed its forecasts can forecast (None: any)."""
    checkpoint = Path(best) if best else run_dir / "checkpoints" / "best.ckpt"
    shown = {k: shlex.quote(shown_path(v)) for k, v in (("run", run_dir), ("best", checkpoint), ("log", log_dir))}
    last, everything = shlex.quote(shown_path(checkpoint.parent / "last.ckpt")), shlex.quote(shown_path(save_dir))
    return "\n".join(
        [
            f"results in {shown_path(run_dir)}/: {', '.join(files)}",
            f"checkpoints: {shown['best']} (scored above), {last} (resume=)",
            f"forecast:    python scripts/predict.py ckpt={shown['best']}" + (f" steps={reach}" if reach else ""),
            f"TensorBoard: tensorboard --logdir {shown['log']}   (all runs: --logdir {everything})",
        ]
    )


def load_best(model: RecurrentForecaster, checkpoint: str | None) -> None:
    """Load the best checkpoint's weights into ``model``, on the CPU, for scoring: the same on one process or
    after a DDP fit."""
    if checkpoint:
        model.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"])
    model.cpu().eval()
