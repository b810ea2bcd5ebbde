"""Normalisation fitted on the training period only, applied window by window, inverted exactly to prices.

Every scaler is written as ``x_norm = (x - loc) / scale``:

- ``standard`` / ``minmax`` / ``none``: one ``loc`` and ``scale`` per column, fitted on training rows.
- ``window`` (the default): ``loc`` is the window's last observed value and ``scale`` that value times a
  training-period RMS of relative moves, i.e. ``x / x_last - 1`` in units of a typical move. The model sees
  relative moves, never levels, so forecasts keep working when prices leave the training range (the S&P 500's
  test period lies entirely above its training range; a level-fitted z-score cannot reach it).

The fitted state is plain data (:meth:`Normalizer.to_dict`) so it travels inside checkpoints safely.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import torch
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from pricernn.data.preprocess import PreparedSeries, require_positive
from pricernn.errors import check


def _relative_rms(values: np.ndarray, ends: np.ndarray, lags: range, backwards: bool) -> np.ndarray:
    """RMS of ``v[t -/+ k] / v[t] - 1`` over anchor rows ``ends`` and lags ``k``; one value per column.

    One vectorised pass per lag keeps memory O(N) instead of materialising every window.
    """
    anchor = values[ends]
    total = np.zeros(values.shape[1])
    for k in lags:
        moved = values[ends - k] if backwards else values[ends + k]
        total += ((moved / anchor - 1.0) ** 2).sum(axis=0)
    rms = np.sqrt(total / (len(ends) * len(lags)))
    return np.where(rms > 0, rms, 1.0)


@dataclass(frozen=True)
class Normalizer:
    """Fitted normalisation of inputs and target; knows how to turn model outputs back into prices."""

    scaler: str
    log_return: bool
    x_loc: tuple[float, ...]  # per feature (global scalers; zeros for ``window``)
    x_scale: tuple[float, ...]  # per feature (global scale, or relative RMS for ``window``)
    y_loc: float
    y_scale: float
    x_kinds: tuple[str, ...] = ()  # per feature with the window scaler: price | standard | bounded (() = all price)

    @classmethod
    def fit(
        cls, series: PreparedSeries, val_row: int | Sequence[int], window: int, horizon: int, scaler: str
    ) -> Normalizer:
        """Fit on the training period and nothing else: the rows before ``val_row`` of each series (one number,
        or one per series of a panel), pooled over the series."""
        val_rows = np.broadcast_to(np.asarray(val_row), (series.n_series,))
        firsts = series.offsets[:-1]
        train = np.concatenate([np.arange(o, o + v) for o, v in zip(firsts, val_rows, strict=True)])
        train_x, train_y = series.inputs[train], series.target[train, None]
        n_features = series.inputs.shape[1]
        if scaler == "window":  # not with log returns (pricernn.config.validate refuses the pair)
            kinds = list(series.kinds) or ["price"] * n_features
            prices = [f for f, k in zip(series.features, kinds, strict=True) if k == "price"]
            frame = pd.DataFrame(series.inputs, index=series.dates, columns=list(series.features))
            require_positive(
                frame,
                prices,
                "data.scaler=window divides by the last value; for a column that can be 0 or negative (a return, a "
                "change in %) use data.scaler=standard, or leave the column out of data.features",
            )
            # last input row of every training window, series by series: no lag reaches into another series
            ends = np.concatenate(
                [o + np.arange(window - 1, v - horizon) for o, v in zip(firsts, val_rows, strict=True)]
            )
            x_rms, columns = np.ones(n_features), [j for j, k in enumerate(kinds) if k == "price"]
            if window > 1:  # relative moves of the price-like columns (derived inputs are scaled below)
                x_rms[columns] = _relative_rms(series.inputs[:, columns], ends, range(1, window), backwards=True)
            y_rms = _relative_rms(series.levels[:, None], ends, range(1, horizon + 1), backwards=False)
            loc, scale = np.zeros(n_features), x_rms.copy()
            for j, (kind, (low, high)) in enumerate(
                zip(kinds, series.bounds or [(0.0, 1.0)] * n_features, strict=True)
            ):
                if kind == "standard":  # returns, volatility, oscillators: training-period mean and deviation
                    loc[j], scale[j] = train_x[:, j].mean(), train_x[:, j].std() or 1.0
                elif kind == "bounded":  # a fixed range onto [-1, 1]
                    loc[j], scale[j] = (low + high) / 2, (high - low) / 2
            return cls(scaler, False, tuple(loc.tolist()), tuple(scale.tolist()), 0.0, float(y_rms[0]),
                       tuple(kinds) if series.kinds else ())  # fmt: skip
        check(series.n_series == 1 or series.log_return,
              f"data.scaler={scaler} fits one price level to all {series.n_series} series, which trade at different "
              "levels: use data.scaler=window (relative to each window's last price) or "
              "data.target_transform=log_return")  # fmt: skip
        if scaler == "none":
            return cls(scaler, series.log_return, (0.0,) * n_features, (1.0,) * n_features, 0.0, 1.0)
        make = StandardScaler if scaler == "standard" else MinMaxScaler
        fx, fy = make().fit(train_x), make().fit(train_y)
        if scaler == "standard":
            x_loc, x_scale, y_loc, y_scale = fx.mean_, fx.scale_, fy.mean_[0], fy.scale_[0]
        else:  # sklearn stores a zero range as 1, so a constant column does not divide by zero
            x_loc, x_scale = fx.data_min_, np.where(fx.data_range_ > 0, fx.data_range_, 1.0)
            y_loc, y_scale = fy.data_min_[0], (fy.data_range_[0] or 1.0)
        return cls(
            scaler,
            series.log_return,
            tuple(map(float, x_loc)),
            tuple(map(float, x_scale)),
            float(y_loc),
            float(y_scale),
        )

    # --- applied to batches of windows (torch, vectorised) ---------------------------------------------

    def normalize(
        self, x: torch.Tensor, y: torch.Tensor, anchor: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Normalise windows ``x`` (B, W, F) and targets ``y`` (B, H); ``anchor`` (B,) is the last observed
        target price. Returns ``(x_norm, y_norm, ctx)`` where ctx (B, 3) = anchor, target loc, target scale:
        all :meth:`to_price` needs to turn any prediction for these windows into prices."""
        x_scale = x.new_tensor(self.x_scale)
        if self.scaler == "window":
            last = x[:, -1:, :]
            x_norm = (x - last) / (last * x_scale)
            if self.x_kinds and any(k != "price" for k in self.x_kinds):  # derived inputs: fitted or fixed scales
                price = x.new_tensor([k == "price" for k in self.x_kinds]).bool()
                x_norm = torch.where(price, x_norm, (x - x.new_tensor(self.x_loc)) / x_scale)
            y_loc, y_scale = anchor, anchor * self.y_scale
        else:
            x_norm = (x - x.new_tensor(self.x_loc)) / x_scale
            y_loc, y_scale = torch.full_like(anchor, self.y_loc), torch.full_like(anchor, self.y_scale)
        y_norm = (y - y_loc[:, None]) / y_scale[:, None]
        return x_norm, y_norm, torch.stack([anchor, y_loc, y_scale], dim=1)

    def to_price(self, y_norm: torch.Tensor, ctx: torch.Tensor) -> torch.Tensor:
        """Invert the normalisation (and the log-return encoding) of predictions (B, H) into prices."""
        anchor, y_loc, y_scale = ctx[:, 0:1], ctx[:, 1:2], ctx[:, 2:3]
        value = y_norm * y_scale + y_loc
        if self.log_return:
            return anchor * torch.exp(torch.cumsum(value, dim=1))
        return value

    # --- plain-data round trip, for checkpoints ------------------------------------------------------------

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, state: dict) -> Normalizer:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in state.items()})
