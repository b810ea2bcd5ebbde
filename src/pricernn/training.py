"""The training pipeline: config → data, model, trainer → fit → score the best checkpoint → run artifacts.

``scripts/train.py`` is a thin Hydra wrapper around :func:`run`; :func:`train` is a plain function that tests
call with a composed config and a directory.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import time
import warnings
from datetime import datetime
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import ModelCheckpoint

from pricernn.data import PriceDataModule
from pricernn.errors import UserError, check, debug_enabled
from pricernn.files import write_atomic
from pricernn.models import RecurrentForecaster
from pricernn.report import summary, test_report

log = logging.getLogger("pricernn")

# Batches here are tensor slices made in the main process; worker processes would only add overhead.
warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
# Lightning 2.6 calls a torch pytree API that torch 2.10+ deprecates; harmless, and not ours to fix.
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)` is deprecated.*")

# The sweepable values shown in TensorBoard's HParams tab (a curated set, not the whole nested config).
HPARAM_KEYS = {
    "model": ("cell", "hidden_size", "num_layers", "dropout", "lr", "weight_decay", "optimizer", "scheduler"),
    "data": ("path", "target", "features", "window", "horizon", "scaler", "target_transform", "batch_size"),
    "trainer": ("max_epochs", "precision", "gradient_clip_val"),
}
# Metrics the HParams tab reports per run; they are declared before fitting and logged when known.
HPARAM_METRICS = (
    "val/loss_best",
    "test/rmse",
    "test/mae",
    "test/mape",
    "test/directional_accuracy",
    "test/rmse_ratio_naive",
    "test/skill",
    "test/mase",
    "test/dm_pvalue",
    "naive/rmse",
    "naive/mae",
)


def run_name(cfg: DictConfig) -> str:
    """A readable TensorBoard run name from the choices that tell runs apart, e.g. ``sp500/gru_w60_hs64_l2``."""
    data, model = cfg.data, cfg.model
    dataset = Path(str(data.path)).name.split(".")[0] + (f"-{data.symbol}" if data.get("symbol") else "")
    name = f"{model.cell}_w{data.window}_hs{model.hidden_size}_l{model.num_layers}"
    if data.horizon != 1:
        name += f"_H{data.horizon}"
    return f"{dataset}/{name}"


def curated_hparams(cfg: DictConfig) -> dict[str, Any]:
    params: dict[str, Any] = {"seed": cfg.seed}
    for group, keys in HPARAM_KEYS.items():
        for key in keys:
            value = cfg[group].get(key)
            params[f"{group}.{key}"] = ",".join(map(str, value)) if OmegaConf.is_list(value) else value
    return params


def _callbacks(cfg: DictConfig, run_dir: Path) -> list[pl.Callback]:
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c is not None]
    for callback in callbacks:
        if isinstance(callback, ModelCheckpoint) and callback.dirpath is None:
            callback.dirpath = str((run_dir / "checkpoints").resolve())
    return callbacks


def train(cfg: DictConfig, run_dir: str | Path) -> dict[str, float]:
    """Fit one model as ``cfg`` says, score its best checkpoint on the test period, write the artifacts to
    ``run_dir`` (config.yaml, checkpoints/, metrics.json, predictions.csv, test_prices.png) and return
    the metrics."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    if cfg.get("resume"):
        check(Path(cfg.resume).is_file(), f"resume={cfg.resume}: no such checkpoint file")
    if cfg.trainer.get("accelerator") in ("gpu", "cuda"):
        check(
            torch.cuda.is_available(), f"trainer.accelerator={cfg.trainer.accelerator}: no CUDA device is visible here"
        )
    if cfg.trainer.get("deterministic") and torch.cuda.is_available():
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuDNN RNNs need it to be deterministic
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    OmegaConf.save(cfg, run_dir / "config.yaml", resolve=True)

    datamodule = PriceDataModule(**cfg.data)
    datamodule.setup()
    model = RecurrentForecaster(
        n_features=datamodule.n_features,
        horizon=datamodule.horizon,
        transform=datamodule.transform_state(),
        **cfg.model,
    )
    version = datetime.now().strftime("%Y-%m-%d_%H-%M-%S_%f")  # microseconds: parallel runs never collide
    logger = instantiate(cfg.logger, name=run_name(cfg), version=version)
    logger.log_hyperparams(curated_hparams(cfg), metrics={k: math.nan for k in HPARAM_METRICS})
    callbacks = _callbacks(cfg, run_dir)
    trainer = pl.Trainer(**cfg.trainer, logger=logger, callbacks=callbacks, default_root_dir=str(run_dir))

    started = time.perf_counter()
    trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("resume"))
    train_seconds = time.perf_counter() - started

    checkpoint = next((c for c in callbacks if isinstance(c, ModelCheckpoint)), None)
    best = checkpoint.best_model_path if checkpoint and checkpoint.best_model_path else None
    predicted = torch.cat(trainer.predict(model, dataloaders=datamodule.test_dataloader(), ckpt_path=best))
    # trainer.predict loaded the best checkpoint's weights into `model`: the multi-step report uses them too
    report = test_report(model, datamodule, predicted.double().numpy(), title=run_name(cfg), **cfg.evaluation)
    metrics = report.metrics
    metrics.update(
        {
            "val/loss_best": float(model.val_loss_best.compute()),
            "epochs": int(trainer.current_epoch),
            "train_seconds": round(train_seconds, 3),
            "params": int(sum(p.numel() for p in model.parameters() if p.requires_grad)),
        }
    )

    logger.log_metrics({k: v for k, v in metrics.items() if "/" in k}, step=trainer.global_step)
    for name, figure in report.figures.items():
        figure.savefig(run_dir / f"{name}.png", dpi=110)
        tag = f"test/{name.removeprefix('test_')}"
        logger.experiment.add_figure(tag, figure, global_step=trainer.global_step)  # also closes the figure
    logger.finalize("success")

    extra = {"best_checkpoint": best, "split_dates": datamodule.split_dates, "tensorboard_dir": logger.log_dir}
    write_atomic(run_dir / "metrics.json", json.dumps({**metrics, **extra}, indent=2) + "\n")
    write_atomic(run_dir / "predictions.csv", report.predictions.to_csv(index=False))
    write_atomic(run_dir / "horizons.csv", report.horizons.to_csv(index=False, float_format="%.6g"))
    print(summary(metrics, datamodule.split_dates["test"], datamodule.target), flush=True)
    return metrics


def run(cfg: DictConfig, run_dir: str | Path, multirun: bool = False) -> float:
    """Train and return ``cfg.optimized_metric`` for sweepers. A user error ends a single run with one line
    and exit status 2; inside a sweep it is recorded in the run directory and the sweep goes on."""
    try:
        metrics = train(cfg, run_dir)
    except UserError as err:
        if debug_enabled():
            raise
        if not multirun:
            print(f"error: {err}", file=sys.stderr, flush=True)
            sys.exit(2)
        log.error("run failed: %s", err)
        write_atomic(Path(run_dir) / "failed.json", json.dumps({"error": str(err)}) + "\n")
        return math.nan
    return metrics[cfg.optimized_metric]
