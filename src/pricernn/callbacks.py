"""Callbacks of our own (the rest come from Lightning, see conf/callbacks/)."""

from __future__ import annotations

import pytorch_lightning as pl
import torch

from pricernn.errors import UserError


class TrainingDiverged(UserError):
    """The training loss became NaN or infinite."""


class DivergenceGuard(pl.Callback):
    """Stop at the first non-finite training loss, naming the epoch and step.

    The loss is checked every ``every`` steps. On the CPU the check costs nothing; on a GPU each check waits
    for the device, so raise ``every`` there. Stopping by exception means no checkpoint is written from the
    diverged weights: best.ckpt and last.ckpt stay those of the last finite epoch.
    """

    def __init__(self, every: int = 1) -> None:
        self.every = max(1, int(every))

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs, batch, batch_idx) -> None:
        if trainer.global_step % self.every:
            return
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is not None and not bool(torch.isfinite(loss)):
            raise TrainingDiverged(
                f"training diverged: the loss became {float(loss)} at epoch {trainer.current_epoch}, step "
                f"{trainer.global_step}; try a lower model.lr (now {pl_module.hparams.lr:g}) or gradient clipping "
                f"(trainer.gradient_clip_val, now {trainer.gradient_clip_val})"
            )
