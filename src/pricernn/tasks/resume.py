"""Stopping a training run on Ctrl-C or SIGTERM: a record of where it stopped and the checkpoint to resume from
(what a resumed run must match is pricernn.checkpoints' business)."""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
from pytorch_lightning.utilities.exceptions import SIGTERMException

from pricernn.files import write_json


class Interrupted(Exception):
    """Training stopped on Ctrl-C or SIGTERM; ``exit_code`` is 130 or 143 (128 + the signal number)."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def interrupted(
    stop: SystemExit, trainer: pl.Trainer, best: str | None, last: str | None, run_dir: Path
) -> Interrupted:
    """Record what is known about an interrupted run (Lightning has already flushed the logger); ``best`` and
    ``last`` are the paths of best.ckpt and last.ckpt, if written yet."""
    sigterm = isinstance(stop, SIGTERMException)
    state = {
        "status": "interrupted",
        "signal": "SIGTERM" if sigterm else "SIGINT",
        "epoch": trainer.current_epoch,
        "global_step": trainer.global_step,
        "last_checkpoint": last or None,
        "best_checkpoint": best or None,
        **{k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1},
    }
    write_json(run_dir / "metrics.json", state)
    then = f"resume with resume={last}" if last else "no epoch had finished, so there is nothing to resume"
    message = f"interrupted by {state['signal']} at epoch {trainer.current_epoch}, step {trainer.global_step}: {then}"
    return Interrupted(message, 143 if sigterm else 130)
