"""Forecast scores in price units, for the model and for the naive persistence forecast on the same targets."""

from __future__ import annotations

import numpy as np

from pricernn.data.datamodule import SplitTargets


def scores(actual: np.ndarray, predicted: np.ndarray, origin: np.ndarray) -> dict[str, float]:
    """MSE, RMSE, MAE, MAPE (%) and directional accuracy of ``predicted`` against ``actual``.

    Directional accuracy is the share of forecasts whose move from the origin price has the sign of the actual
    move. The naive forecast predicts no move, so it scores the share of days with no move (about 0): the
    reference for a model's directional accuracy is a coin's 0.5, not the naive row.
    """
    error = predicted - actual
    mse = float(np.mean(error**2))
    return {
        "mse": mse,
        "rmse": float(np.sqrt(mse)),
        "mae": float(np.mean(np.abs(error))),
        "mape": float(100.0 * np.mean(np.abs(error) / np.abs(actual))),
        "directional_accuracy": float(np.mean(np.sign(predicted - origin) == np.sign(actual - origin))),
    }


def evaluate(targets: SplitTargets, predicted: np.ndarray, split: str = "test") -> dict[str, float]:
    """Flat metrics for the model (``{split}/…``) and the naive forecast (``naive/…``).

    The headline keys score the next step (horizon 1); with a longer horizon every step h also gets
    ``{split}/h{h}/…`` and ``naive/h{h}/…``.
    """
    naive = np.repeat(targets.anchor[:, None], targets.actual.shape[1], axis=1)
    out: dict[str, float] = {}
    for h in range(targets.actual.shape[1]):
        suffix = "" if h == 0 else f"h{h + 1}/"
        for name, forecast in ((split, predicted), ("naive", naive)):
            for key, value in scores(targets.actual[:, h], forecast[:, h], targets.anchor).items():
                out[f"{name}/{suffix}{key}"] = value
        if h == 0 and targets.actual.shape[1] > 1:  # name horizon 1 explicitly too, for tables over horizons
            out.update({f"{n}/h1/{k}": out[f"{n}/{k}"] for n in (split, "naive") for k in ("rmse", "mae")})
    out[f"{split}/rmse_ratio_naive"] = out[f"{split}/rmse"] / out["naive/rmse"]
    return out
