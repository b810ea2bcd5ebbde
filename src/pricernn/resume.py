"""Stopping and resuming a training run: Ctrl-C/SIGTERM leave a record and a checkpoint to resume from; a
checkpoint to resume from is read safely and must match the configured model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.utilities.exceptions import SIGTERMException

from pricernn.errors import UserError, check, first_line
from pricernn.files import write_atomic
from pricernn.models import RecurrentForecaster


class Interrupted(Exception):
    """Training stopped on Ctrl-C or SIGTERM; ``exit_code`` is 130 or 143 (128 + the signal number)."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def interrupted(
    stop: SystemExit, trainer: pl.Trainer, checkpoint: ModelCheckpoint | None, run_dir: Path
) -> Interrupted:
    """Record what is known about an interrupted run (Lightning has already flushed the logger)."""
    sigterm = isinstance(stop, SIGTERMException)
    last = checkpoint.last_model_path if checkpoint else ""
    state = {
        "status": "interrupted",
        "signal": "SIGTERM" if sigterm else "SIGINT",
        "epoch": trainer.current_epoch,
        "global_step": trainer.global_step,
        "last_checkpoint": last or None,
        "best_checkpoint": (checkpoint.best_model_path or None) if checkpoint else None,
        **{k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1},
    }
    write_atomic(run_dir / "metrics.json", json.dumps(state, indent=2) + "\n")
    then = f"resume with resume={last}" if last else "no epoch had finished, so there is nothing to resume"
    message = f"interrupted by {state['signal']} at epoch {trainer.current_epoch}, step {trainer.global_step}: {then}"
    return Interrupted(message, 143 if sigterm else 130)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a training checkpoint to resume from, safely (``weights_only``), or fail with one line."""
    file = Path(str(path)).expanduser()
    check(file.is_file(), f"resume={path}: no such checkpoint file")
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated, foreign or hand-edited files fail in many ways
        raise UserError(f"resume={path}: not a readable checkpoint ({first_line(err)})") from err
    check(
        isinstance(state, dict) and "loops" in state and "transform" in state.get("hyper_parameters", {}),
        f"resume={path}: not a pricernn training checkpoint (no training state or data transform in it)",
    )
    return state


def check_same_model(path: str, state: dict[str, Any], model: RecurrentForecaster) -> None:
    """The checkpoint must hold the model the config builds: same cell, sizes, inputs, horizon and window."""
    saved, wanted = state["hyper_parameters"], model.hparams
    keys = ("cell", "hidden_size", "num_layers", "n_features", "horizon")
    differ = [f"{k}={saved.get(k)} (config: {wanted[k]})" for k in keys if saved.get(k) != wanted[k]]
    saved_window, window = saved["transform"].get("window"), wanted["transform"]["window"]
    if saved_window != window:
        differ.append(f"window={saved_window} (config: {window})")
    check(not differ, f"resume={path}: the checkpoint was trained with {', '.join(differ)}; resume with its options")
