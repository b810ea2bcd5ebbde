"""RecurrentForecaster: one LightningModule for vanilla RNN, LSTM and GRU (the cell is a parameter)."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn
from torchmetrics import MeanAbsoluteError, MeanMetric, MeanSquaredError

from pricernn.config.validate import ModelConfig, check_section
from pricernn.data.transforms import Normalizer
from pricernn.errors import UserError

# the names the config allows (pricernn.config.validate), and what they build
CELLS: dict[str, type[nn.RNNBase]] = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}


class Network(nn.Module):
    """One recurrent network: window (B, W, F) → cell → last hidden state → linear head → ``outputs`` values, or
    with ``quantiles`` (sorted levels, the median among them) that many values per output, non-crossing."""

    def __init__(
        self,
        cell: str,
        n_features: int,
        hidden_size: int,
        num_layers: int,
        dropout: float,
        outputs: int,
        quantiles: tuple[float, ...] = (),
    ):
        super().__init__()
        # torch applies dropout between stacked layers only; with one layer it would warn and do nothing
        self.rnn = CELLS[cell](
            n_features, hidden_size, num_layers, batch_first=True, dropout=dropout if num_layers > 1 else 0.0
        )
        self.outputs, self.levels = outputs, tuple(quantiles)
        self.median = self.levels.index(0.5) if self.levels else 0
        self.head = nn.Linear(hidden_size, outputs * max(len(self.levels), 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The point forecasts (B, outputs): the median of a quantile network."""
        return self.quantiles(x)[..., self.median] if self.levels else self._head(x)

    def quantiles(self, x: torch.Tensor) -> torch.Tensor:
        """The quantile forecasts (B, outputs, len(levels)), ascending: each level above the median adds a
        positive step (softplus) to the one below it, each below subtracts one, so quantiles never cross."""
        raw = self._head(x).view(len(x), self.outputs, len(self.levels))
        center = raw[..., self.median : self.median + 1]
        above = center + torch.cumsum(nn.functional.softplus(raw[..., self.median + 1 :]), dim=-1)
        below = center - torch.cumsum(nn.functional.softplus(raw[..., : self.median].flip(-1)), dim=-1)
        return torch.cat([below.flip(-1), center, above], dim=-1)

    def _head(self, x: torch.Tensor) -> torch.Tensor:
        output, _ = self.rnn(x)
        return self.head(output[:, -1])


def pinball_loss(pred: torch.Tensor, y: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
    """Per horizon, the mean pinball loss (Koenker & Bassett 1978) of quantile forecasts ``pred`` (B, H, Q) at
    ``levels`` (Q,) for targets ``y`` (B, H): τ(y − q) where y ≥ q, (1 − τ)(q − y) otherwise. Returns (H,)."""
    diff = y[..., None] - pred
    return torch.maximum(levels * diff, (levels - 1) * diff).mean(dim=(0, 2))


class RecurrentForecaster(pl.LightningModule):
    """Recurrent networks (:class:`Network`) for the strategy the config names, trained together.

    The model works in normalised units; ``transform`` (the data module's :meth:`transform_state`) rides along
    as a hyperparameter so every checkpoint can turn its outputs back into prices on its own.
    Validation logs the loss and RMSE/MAE in price units; ``val/loss_best`` is the lowest validation loss so far
    (the epoch best.ckpt holds) and ``val/rmse_best`` that epoch's RMSE in price units (so runs with other
    scalers compare), the value sweepers optimise.
    """

    def __init__(
        self,
        n_features: int,
        horizon: int = 1,
        cell: str = "lstm",
        hidden_size: int = 64,
        num_layers: int = 2,
        dropout: float = 0.0,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        optimizer: str = "adam",
        scheduler: str = "none",
        transform: dict[str, Any] | None = None,
        strategy: str = "recursive",
        loss_weights: list[float] | None = None,
        loss: str = "mse",
        quantiles: list[float] | tuple[float, ...] = (0.1, 0.5, 0.9),
        symbol_embedding: int = 0,
        n_series: int = 1,
    ) -> None:
        super().__init__()
        quantiles = [float(q) for q in quantiles]  # plain floats: checkpoints hold plain data (weights_only loads)
        options = {"cell": cell, "hidden_size": hidden_size, "num_layers": num_layers, "dropout": dropout, "lr": lr}
        options |= {"weight_decay": weight_decay, "optimizer": optimizer, "scheduler": scheduler, "strategy": strategy}
        options |= {"loss": loss, "quantiles": quantiles, "symbol_embedding": symbol_embedding}
        check_section(ModelConfig, "model", options)  # types and allowed values: pricernn.config.validate
        self.save_hyperparameters(logger=False)
        # recursive: one network of ``horizon`` outputs (usually 1), fed its own forecasts beyond them; direct: one
        # network with an output per horizon; auto: both, one forecast per horizon chosen on validation data
        # (pricernn.forecasting.combination)
        outputs = (
            {"recursive": horizon, "direct": horizon} if strategy != "auto" else {"recursive": 1, "direct": horizon}
        )
        kept = {"recursive": ("recursive",), "direct": ("direct",), "auto": ("recursive", "direct")}[strategy]
        # a quantile model learns these levels of every output (pinball loss); the median is its point forecast
        self.quantiles = tuple(sorted(quantiles)) if loss == "quantile" else ()
        # who is who in a panel: a learned vector per series, beside every input row of its windows (0 = none)
        self.embedding = nn.Embedding(n_series, symbol_embedding) if symbol_embedding else None
        width = n_features + symbol_embedding
        self.nets = nn.ModuleDict(
            {n: Network(cell, width, hidden_size, num_layers, dropout, outputs[n], self.quantiles) for n in kept}
        )
        self.primary = kept[0] if strategy != "direct" else "direct"  # what forward() and predict_step() use
        # per-horizon weights of the loss, each horizon's naive error variance on the training data inverted and
        # scaled to a mean of 1, so long, noisy horizons do not drown the short ones (PriceDataModule.loss_weights)
        weights = torch.tensor(loss_weights or [1.0] * horizon, dtype=torch.float32)
        self.register_buffer("loss_weights", weights, persistent=False)
        self.register_buffer("taus", torch.tensor(self.quantiles, dtype=torch.float32), persistent=False)
        self.loss_fn = nn.MSELoss()
        self.normalizer = Normalizer.from_dict(transform["normalizer"]) if transform else None
        self.val_rmse, self.val_mae = MeanSquaredError(squared=False), MeanAbsoluteError()
        self.val_loss = MeanMetric()
        # The best epoch (lowest validation loss: the one best.ckpt holds and the report scores) and its RMSE in
        # price units, what sweeps rank by (comparable across scalers). Buffers, so checkpoints carry them and a
        # resumed run remembers its best epoch.
        self.register_buffer("val_loss_best", torch.tensor(float("inf")))
        self.register_buffer("val_rmse_best", torch.tensor(float("inf")))
        # nan_strategy="disable": the default NaN check reads a flag back to the host on every update (the
        # divergence guard watches for NaN instead)
        self.train_loss = MeanMetric(nan_strategy="disable")
        self.run_config: dict[str, Any] | None = None  # the run's resolved config, stored in every checkpoint

    def forward(self, x: torch.Tensor, net: str | None = None, series: torch.Tensor | None = None) -> torch.Tensor:
        """The forecasts (in normalised units) of network ``net`` ("recursive" or "direct"; by default the
        model's primary one); ``series`` (B,): which series of the panel each window is from, for a model with a
        symbol embedding."""
        return self.nets[net or self.primary](self.with_symbols(x, series))

    def with_symbols(self, x: torch.Tensor, series: torch.Tensor | None) -> torch.Tensor:
        """The windows (B, W, F) a network reads: with a symbol embedding, each row followed by its series' vector."""
        if self.embedding is None:
            return x
        if series is None:
            raise UserError("this model has a symbol embedding: it needs to know each window's series")
        vectors = self.embedding(series.to(x.device).long())
        return torch.cat([x, vectors[:, None, :].expand(-1, x.shape[1], -1)], dim=-1)

    @staticmethod
    def _series(ctx: torch.Tensor) -> torch.Tensor:
        return ctx[:, 3].long()  # the batch context's series column (pricernn.data.windows)

    def _loss(self, x: torch.Tensor, y: torch.Tensor, series: torch.Tensor | None = None) -> torch.Tensor:
        """The sum over the networks of each one's mean squared error (or pinball loss, for a quantile model) over
        its horizons, weighted per horizon."""
        x = self.with_symbols(x, series)
        total = x.new_zeros(())
        for network in self.nets.values():
            if self.quantiles:
                k = network.outputs
                per_horizon = pinball_loss(network.quantiles(x), y[:, :k], self.taus)
                total = total + per_horizon @ (self.loss_weights[:k] / self.loss_weights[:k].mean()) / k
                continue
            pred = network(x)
            k = pred.shape[1]
            if k == 1:  # one horizon: plain MSE (the weights are a constant then)
                total = total + self.loss_fn(pred, y[:, :1])
            else:
                weights = self.loss_weights[:k] / self.loss_weights[:k].mean()
                total = total + ((pred - y[:, :k]) ** 2).mean(dim=0) @ weights / k
        return total

    def to_price(self, y_norm: torch.Tensor, ctx: torch.Tensor) -> torch.Tensor:
        if self.normalizer is None:
            raise UserError("this model was built without a data transform, so it cannot report prices")
        return self.normalizer.to_price(y_norm, ctx)

    # --- steps -------------------------------------------------------------------------------------------------

    def training_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> torch.Tensor:
        x, y, ctx = batch
        loss = self._loss(x, y, self._series(ctx))
        # Accumulated on the device and logged once per epoch: a per-step self.log costs ~0.6 ms of bookkeeping
        # (Lightning moves its result collection to the value's device on every call), 5-10 % of an RNN step.
        self.train_loss.update(loss.detach(), weight=len(x))
        return loss

    def on_train_epoch_end(self) -> None:
        if self.train_loss.update_called:  # an epoch cut short before its first step has no loss to report
            self.log("train/loss", self.train_loss, prog_bar=True)  # Lightning computes, syncs and resets it

    def validation_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> None:
        x, y, ctx = batch
        self.val_loss(self._loss(x, y, self._series(ctx)), weight=len(x))
        self.log("val/loss", self.val_loss, on_epoch=True, prog_bar=True, batch_size=len(x))
        if self.normalizer is not None:  # in price units: the primary network's forecasts
            pred = self(x, series=self._series(ctx))
            pred_price, true_price = self.to_price(pred, ctx), self.to_price(y[:, : pred.shape[1]], ctx)
            self.val_rmse(pred_price, true_price)
            self.val_mae(pred_price, true_price)
            self.log_dict({"val/rmse": self.val_rmse, "val/mae": self.val_mae}, on_epoch=True, batch_size=len(x))

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            return
        loss = self.val_loss.compute()
        if bool(loss < self.val_loss_best):  # one read a validation: the epoch best.ckpt will hold
            self.val_loss_best.copy_(loss)
            if self.normalizer is not None:
                self.val_rmse_best.copy_(self.val_rmse.compute())
        self.log("val/loss_best", self.val_loss_best, prog_bar=False)
        if self.normalizer is not None:
            self.log("val/rmse_best", self.val_rmse_best, prog_bar=False)

    def predict_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int, net: str | None = None) -> torch.Tensor:
        """Predictions of network ``net`` (default: the primary one) for a batch of windows, in prices (B, outputs)."""
        x, _, ctx = batch
        return self.to_price(self(x, net, self._series(ctx)), ctx)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # what resume= compares the new config with, and what backtest.py ckpt= re-runs (pricernn.checkpoints)
        if self.run_config is not None:
            checkpoint["pricernn_config"] = self.run_config
        # a resumed run continues logging into the same TensorBoard run
        if self._trainer is not None and self.logger is not None:
            checkpoint["pricernn_run"] = {"name": str(self.logger.name), "version": str(self.logger.version)}

    # --- optimisation ------------------------------------------------------------------------------------------

    def configure_optimizers(self) -> dict[str, Any]:
        hp = self.hparams
        optimizer = OPTIMIZERS[hp.optimizer](self.parameters(), lr=hp.lr, weight_decay=hp.weight_decay)
        if hp.scheduler == "plateau":
            scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=2)
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "monitor": "val/loss"}}
        if hp.scheduler == "cosine":
            scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, self.trainer.max_epochs))
            return {"optimizer": optimizer, "lr_scheduler": scheduler}
        return {"optimizer": optimizer}
