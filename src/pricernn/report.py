"""The test report of a trained model: one-step and multi-step scores beside the baselines, tables and figures.

Everything is batched over all test origins at once: one forward pass per recursion step, numpy for the rest.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from pricernn.data import PriceDataModule
from pricernn.data.calendar import stamp_format
from pricernn.errors import check
from pricernn.evaluation import SIGNIFICANCE, baseline_forecasts, copy_lag, score_forecasts, verdict
from pricernn.forecasting import can_recurse, recursive_forecast
from pricernn.models import RecurrentForecaster
from pricernn.plots import fan_figure, horizon_figure, price_figure

NAMES = {"test": "model", "naive": "naive", "drift": "drift", "ma": "moving avg"}


@dataclass
class Report:
    metrics: dict[str, float]
    predictions: pd.DataFrame  # one row per test target: date, (horizon), actual, predicted, naive
    horizons: pd.DataFrame  # one row per horizon of the recursive evaluation
    figures: dict[str, Figure] = field(default_factory=dict)


def build_report(
    model: RecurrentForecaster,
    datamodule: PriceDataModule,
    predicted: np.ndarray,
    steps: int = 10,
    ma_window: int = 20,
    fan_origins: int = 12,
    title: str = "",
) -> Report:
    """Score ``predicted`` (the model's (M, H) forecasts of every test window) and the model's recursive
    ``steps``-step forecasts from every test origin, against naive, drift and moving-average forecasts."""
    check(int(ma_window) >= 1, f"evaluation.ma_window={ma_window} must be at least 1")
    targets = datamodule.targets("test")
    origin_rows = np.asarray(datamodule.datasets["test"].starts) + datamodule.window - 1
    levels, scale = datamodule.series.levels, datamodule.naive_mae_train
    baselines = baseline_forecasts(levels, origin_rows, predicted.shape[1], ma_window)

    # headline: the next step, over every test window
    metrics = score_forecasts(
        targets.actual[:, :1],
        {"test": predicted[:, :1], **{k: v[:, :1] for k, v in baselines.items()}},
        targets.anchor,
        scale,
        per_horizon=False,
    )
    metrics["test/rmse_ratio_naive"] = metrics["test/rmse"] / metrics["naive/rmse"]
    metrics["test/copy_lag"], metrics["test/copy_lag_corr"] = copy_lag(targets.actual[:, 0], predicted[:, 0])

    # multi-step: recursive beyond the model's own horizon, which needs the target to be the only input
    steps = max(int(steps), model.hparams.horizon) if can_recurse(model.hparams.transform) else model.hparams.horizon
    windows, origins, multi = datamodule.forecast_origins("test", steps)
    device = next(model.parameters()).device
    model.eval()
    paths = recursive_forecast(
        model, windows.to(device), torch.as_tensor(multi.anchor, dtype=torch.float32, device=device), steps
    )
    forecasts = {"test": paths.cpu().double().numpy(), **baseline_forecasts(levels, origins, steps, ma_window)}
    metrics.update(score_forecasts(multi.actual, forecasts, multi.anchor, scale, per_horizon=True))
    metrics["eval/steps"], metrics["eval/origins"] = steps, len(origins)
    if steps > 1:  # the longest horizon's headline, for sweeps that care about it
        metrics["test/rmse_ratio_naive_last_h"] = metrics[f"test/h{steps}/rmse"] / metrics[f"naive/h{steps}/rmse"]

    horizons = _horizon_table(metrics, steps)
    figures = {
        "test_prices": price_figure(
            targets.target_dates[:, 0], targets.actual[:, 0], predicted[:, 0], targets.anchor, title, datamodule.target
        ),
        "horizon_errors": horizon_figure(horizons, NAMES, title, datamodule.target),
        "forecast_fan": fan_figure(
            datamodule.series.dates[origins[0] - datamodule.window : origins[-1] + steps + 1],
            levels[origins[0] - datamodule.window : origins[-1] + steps + 1],
            np.concatenate([multi.origin_dates.values[:, None], multi.target_dates], axis=1),
            np.concatenate([multi.anchor[:, None], forecasts["test"]], axis=1),  # paths start at the origin
            np.linspace(0, len(origins) - 1, min(fan_origins, len(origins))).astype(int),
            f"{steps}-step recursive forecasts from test origins, {title}",
            datamodule.target,
        ),
    }
    stamp = stamp_format(datamodule.frequency)
    return Report(metrics, _predictions_frame(targets, predicted, stamp), horizons, figures)


def _predictions_frame(targets, predicted: np.ndarray, stamp: str) -> pd.DataFrame:
    horizon = predicted.shape[1]
    frame = pd.DataFrame(
        {
            "date": pd.to_datetime(targets.target_dates.ravel()).strftime(stamp),
            "horizon": np.tile(np.arange(1, horizon + 1), len(predicted)),
            "actual": targets.actual.ravel(),
            "predicted": predicted.ravel(),
            "naive": np.repeat(targets.anchor, horizon),
        }
    )
    return frame if horizon > 1 else frame.drop(columns="horizon")


def _horizon_table(metrics: dict[str, float], steps: int) -> pd.DataFrame:
    rows = []
    for h in range(1, steps + 1):
        row = {"horizon": h}
        for name in NAMES:
            row[f"{name}_rmse"] = metrics[f"{name}/h{h}/rmse"]
        for key in ("mae", "mape", "skill", "mase", "directional_accuracy", "dm_stat", "dm_pvalue", "direction_pvalue"):
            row[key] = metrics[f"test/h{h}/{key}"]
        rows.append(row)
    return pd.DataFrame(rows).rename(columns={"test_rmse": "model_rmse"})


def summary(metrics: dict[str, float], period: tuple[str, str], unit: str, bar: str = "day") -> str:
    """The lines a user reads after a run: model beside the baselines in price units, and what they mean;
    ``bar`` names one bar ("day", "hour", "month": pricernn.data.calendar.bar_word)."""
    rows = [
        f"Test period {period[0]} .. {period[1]}, errors in {unit} price units (next step, every test {bar}):",
        f"{'':12}{'RMSE':>10}{'MAE':>10}{'MAPE %':>9}{'MASE':>8}{'skill':>8}{'dir.acc':>9}",
    ]
    for name, label in NAMES.items():
        m = {k: metrics[f"{name}/{k}"] for k in ("rmse", "mae", "mape", "mase", "skill", "directional_accuracy")}
        rows.append(
            f"{label:12}{m['rmse']:10.3f}{m['mae']:10.3f}{m['mape']:9.3f}{m['mase']:8.3f}{m['skill']:8.4f}"
            f"{m['directional_accuracy']:9.3f}"
        )
    rows.append(f"next step: {verdict(metrics)}")
    p = metrics["test/direction_pvalue"]
    coin = (
        "better than a coin"
        if p < SIGNIFICANCE and metrics["test/directional_accuracy"] > 0.5
        else ("not distinguishable from a coin" if p >= SIGNIFICANCE else "worse than a coin")
    )
    rows.append(
        f"direction right on {100 * metrics['test/directional_accuracy']:.1f}% of {bar}s: {coin} (p = {p:.3g}); "
        f"drift, which always bets on the past trend, gets {100 * metrics['drift/directional_accuracy']:.1f}%"
    )
    lag, corr = int(metrics["test/copy_lag"]), metrics["test/copy_lag_corr"]
    if lag == 1:
        rows.append(
            f"warning: the predicted moves follow the actual move of the {bar} before (lag 1, corr {corr:.2f}): "
            "the model mostly repeats the last price"
        )
    steps = int(metrics.get("eval/steps", 1))
    if steps > 1:
        shown = [h for h in (1, 2, 3, 5, 10, 20, steps) if h <= steps]
        rows.append(f"Recursive forecasts from {int(metrics['eval/origins'])} test origins, RMSE per horizon:")
        rows.append(f"{'h':>4}{'model':>10}{'naive':>10}{'drift':>10}{'mov.avg':>10}{'skill':>9}{'DM p':>9}")
        for h in sorted(set(shown)):
            r = [metrics[f"{n}/h{h}/rmse"] for n in NAMES]
            rows.append(
                f"{h:4d}{r[0]:10.3f}{r[1]:10.3f}{r[2]:10.3f}{r[3]:10.3f}{metrics[f'test/h{h}/skill']:9.4f}"
                f"{metrics[f'test/h{h}/dm_pvalue']:9.3g}"
            )
        rows.append(f"h={steps}: {verdict(metrics, prefix=f'h{steps}/')}")
    return "\n".join(rows)
