"""Callbacks of our own (the rest come from Lightning, see conf/callbacks/)."""

from __future__ import annotations

import math
import random
import time

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ProgressBar

from pricernn.errors import UserError


class TrainingDiverged(UserError):
    """The training loss became NaN or infinite."""


class DivergenceGuard(pl.Callback):
    """Stop at a non-finite training loss, naming the epoch and the step.

    Every step folds "was this loss finite?" into a flag that stays on the loss's device, so no step waits for
    it; the flag is read every ``every`` steps. ``every=None`` reads it every step on the CPU, where reading is
    free and the message names the exact step, and every 50 steps on an accelerator, where each read waits for
    the device to catch up. Stopping by exception means no checkpoint is written from the diverged weights:
    best.ckpt and last.ckpt stay those of the last finite epoch.
    """

    def __init__(self, every: int | None = None) -> None:
        self.every = None if every is None else max(1, int(every))
        self.bad: torch.Tensor | None = None  # any non-finite loss since the last read
        self.last_read = 0  # the global step of the last read

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.bad, self.last_read = None, trainer.global_step  # a resumed run starts counting where it stopped

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs, batch, batch_idx) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is None:
            return
        finite = torch.isfinite(loss.detach()).all()
        self.bad = ~finite if self.bad is None else self.bad | ~finite
        every = self.every or (1 if loss.device.type == "cpu" else 50)
        step = trainer.global_step
        if step % every and not trainer.is_last_batch:
            return
        bad, self.bad, since = bool(self.bad), None, self.last_read
        self.last_read = step
        if bad:
            when = f"step {step}" if step - since <= 1 else f"between steps {since + 1} and {step}"
            value = float(loss)
            became = f"became {value}" if not math.isfinite(value) else "was NaN or infinite"
            raise TrainingDiverged(
                f"training diverged: the loss {became} at epoch {trainer.current_epoch}, {when}; "
                f"try a lower model.lr (now {pl_module.hparams.lr:g}) or gradient clipping "
                f"(trainer.gradient_clip_val, now {trainer.gradient_clip_val})"
            )


class RandomState(pl.Callback):
    """Carries the random number generators' states (python, numpy, torch, CUDA) in every checkpoint and puts
    them back when a run resumes, so dropout draws in a resumed run what the uninterrupted run drew.

    Lightning saves callbacks' ``state_dict`` with each checkpoint. The states are restored at ``on_train_start``,
    after Lightning has built everything (which draws random numbers too) and before the first batch; a
    checkpoint is written after an epoch's validation, from where the uninterrupted run goes straight on to the
    next epoch. Batch order does not depend on these states (pricernn.data.windows draws it from the seed and
    the global step). Everything is stored as lists and tensors, which ``weights_only`` loading accepts.
    """

    def __init__(self) -> None:
        self.saved: dict | None = None

    def state_dict(self) -> dict:
        version, mt_state, gauss = random.getstate()
        name, keys, position, has_gauss, cached = np.random.get_state()
        state = {
            "python": [version, list(mt_state), gauss],
            "numpy": [name, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, cached],
            "torch": torch.get_rng_state(),
        }
        if torch.cuda.is_available():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        self.saved = state_dict

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.saved is None:
            return
        version, mt_state, gauss = self.saved["python"]
        random.setstate((version, tuple(mt_state), gauss))
        name, keys, position, has_gauss, cached = self.saved["numpy"]
        np.random.set_state((name, keys.numpy().astype(np.uint32), position, has_gauss, cached))
        torch.set_rng_state(self.saved["torch"])
        if "cuda" in self.saved and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(self.saved["cuda"])
        self.saved = None


class EpochLines(ProgressBar):
    """One plain line per epoch, for standard output that is not a terminal (a file, a pipe, a SLURM or CI log),
    where a progress bar's redraws would fill the log with carriage returns: ``epoch 3/20: train/loss 0.0123,
    val/loss 0.0145, val/rmse 20.1 (4.2 s)``. The training loss is logged by the model after the callbacks'
    epoch-end hooks, so an epoch's line is printed when the next epoch starts, and the last one when training
    ends. A terminal keeps Lightning's bar (pricernn.tasks.train chooses)."""

    KEYS = ("train/loss", "val/loss", "val/rmse")

    def __init__(self) -> None:
        super().__init__()
        self.enabled, self.started, self.pending = True, 0.0, None

    def disable(self) -> None:
        self.enabled = False

    def enable(self) -> None:
        self.enabled = True

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.started, self.pending = time.perf_counter(), None

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._print(trainer)
        self.pending = trainer.current_epoch

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._print(trainer)

    def _print(self, trainer: pl.Trainer) -> None:
        if self.pending is None or not self.enabled or not trainer.is_global_zero:
            return
        metrics = trainer.callback_metrics
        shown = ", ".join(f"{k} {float(metrics[k]):.6g}" for k in self.KEYS if k in metrics)
        of = f"/{trainer.max_epochs}" if trainer.max_epochs and trainer.max_epochs > 0 else ""
        elapsed = time.perf_counter() - self.started
        print(f"epoch {self.pending + 1}{of}: {shown or 'no metrics yet'} ({elapsed:.1f} s)", flush=True)
        self.pending = None
