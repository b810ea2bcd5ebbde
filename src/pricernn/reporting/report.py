"""The test report of a trained model: one-step and multi-step scores beside the baselines, the tests that say
whether a difference is real, a trading check, tables and figures (the text a user reads: pricernn.reporting.summary).

Everything is batched over all test origins at once: one forward pass per recursion step, numpy for the rest.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from pricernn.data import PriceDataModule
from pricernn.data.frequency import stamp_format
from pricernn.evaluation import (
    AutoRegression,
    baseline_forecasts,
    score_forecasts,
    trading_check,
)
from pricernn.evaluation.intervals import Bands, Conformal, random_walk_bands, score_intervals
from pricernn.forecasting.combination import Combination
from pricernn.forecasting.multistep import base_bands, scored_steps, strategy_paths
from pricernn.models import RecurrentForecaster
from pricernn.reporting.plots import equity_figure, fan_figure, horizon_figure, price_figure, spaced_origins

log = logging.getLogger("pricernn")
NAMES = {"test": "model", "naive": "naive", "drift": "drift", "ma": "moving avg", "ar": "AR(p)"}


@dataclass
class Report:
    metrics: dict[str, float | None]
    predictions: pd.DataFrame  # one row per test target: date, (horizon), actual, predicted, naive
    horizons: pd.DataFrame  # one row per horizon of the recursive evaluation
    figures: dict[str, Figure] = field(default_factory=dict)
    intervals: dict = field(default_factory=dict)  # the bands' calibration for forecasts from here on
    scored: dict[str, Scored] = field(default_factory=dict)  # "next" and "multi": what a panel report pools
    per_symbol: pd.DataFrame | None = None  # a panel's table of assets (pricernn.reporting.pooled)


@dataclass(frozen=True)
class Origins:
    """Test origins and what they forecast: rows of the series, origin prices, realised prices (M, steps)."""

    origin_rows: np.ndarray
    origin_dates: pd.DatetimeIndex
    target_dates: np.ndarray
    anchor: np.ndarray
    actual: np.ndarray


@dataclass(frozen=True)
class Scored:
    """One evaluation's forecasts from its origins, kept so a panel's report can pool the series'
    (pricernn.reporting.pooled): the model's and baselines' (M, steps), the model's calls, its bands and a random
    walk's."""

    origins: Origins
    forecasts: dict[str, np.ndarray]
    calls: np.ndarray
    bands: Bands
    walk: Bands


def build_report(
    model: RecurrentForecaster,
    datamodule: PriceDataModule,
    combination: Combination,
    calibration: Conformal | None = None,
    steps: int = 10,
    ma_window: int = 20,
    fan_origins: int = 12,
    trading: dict | None = None,
    title: str = "",
    interval_method: str = "conformal",
    aci_gamma: float = 0.005,
    figures: bool = True,
) -> Report:
    """Score the model's forecasts, combined per horizon as ``combination`` says (fitted on the validation
    period), from every test origin: the next step and 1..``steps`` steps ahead, against naive, drift,
    moving-average and AR(p) forecasts; their intervals (``calibration``, by ``interval_method``) beside a random
    walk's; and trade the one-step forecasts (``trading``: ``short``, ``cost_bps``) beside buy-and-hold."""
    model.eval()
    levels, scale = datamodule.series.levels, datamodule.naive_mae_train
    ar = _fit_ar(levels, datamodule.rows[0])  # fitted on the training period alone

    # headline: the next step, from every test origin
    intervals = _Intervals(calibration, interval_method, aci_gamma, levels[: datamodule.rows[0]])
    next_step, origins_1, calls_1, bases_1 = _forecasts(model, datamodule, combination, 1, intervals.levels)
    forecasts_1 = {"test": next_step, **_baselines(levels, origins_1.origin_rows, 1, ma_window, ar)}
    metrics = score_forecasts(
        origins_1.actual, forecasts_1, origins_1.anchor, scale, per_horizon=False, calls_from=calls_1
    )
    metrics["test/rmse_ratio_naive"] = metrics["test/rmse"] / metrics["naive/rmse"]
    metrics["test/shrink"] = combination.weight(0)
    bands_1, _, walk_1 = intervals.score(metrics, origins_1, bases_1, per_horizon=False)
    if ar is not None:
        metrics["ar/order"] = ar.order
    equity = None
    if (origins_1.anchor > 0).all() and (origins_1.actual > 0).all():  # returns of a spread mean nothing
        periods = datamodule.frequency.periods_per_year
        trade, *equity = trading_check(
            origins_1.anchor, calls_1[:, 0], origins_1.actual[:, 0], periods, **(trading or {})
        )
        metrics.update(trade)
    else:
        log.info("no trading check: the test prices are not all positive, so they have no returns")

    # multi-step: every horizon from every origin whose targets all lie in the test period
    steps = scored_steps(model, steps)
    paths, multi, calls, bases = _forecasts(model, datamodule, combination, steps, intervals.levels)
    forecasts = {"test": paths, **_baselines(levels, multi.origin_rows, steps, ma_window, ar)}
    metrics.update(score_forecasts(multi.actual, forecasts, multi.anchor, scale, per_horizon=True, calls_from=calls))
    metrics.update({f"test/h{h + 1}/shrink": combination.weight(h) for h in range(steps)})
    metrics.update(drift_metrics(multi.actual, multi.anchor, paths, combination))
    bands, interval_state, walk = intervals.score(metrics, multi, bases, per_horizon=True)
    metrics["eval/steps"], metrics["eval/origins"] = steps, len(multi.anchor)
    if steps > 1:  # the longest horizon's headline, for sweeps that care about it
        metrics["test/rmse_ratio_naive_last_h"] = metrics[f"test/h{steps}/rmse"] / metrics[f"naive/h{steps}/rmse"]

    horizons = horizon_table(metrics, steps, [n for n in NAMES if n in forecasts], combination, tuple(bands))
    stamp = stamp_format(datamodule.frequency)
    predictions = _predictions_frame(origins_1, next_step, bands_1, stamp)
    scored = {
        "next": Scored(origins_1, forecasts_1, calls_1, bands_1, walk_1),
        "multi": Scored(multi, forecasts, calls, bands, walk),
    }
    if not figures:
        return Report(metrics, predictions, horizons, {}, interval_state, scored)
    dates, rows = origins_1.target_dates[:, 0], multi.origin_rows
    shown = spaced_origins(len(rows), steps, most=fan_origins)  # inside the fan figure's window
    start = multi.anchor[:, None]  # paths and their bands start at the origin
    fan_bands = {level: (np.hstack([start, lo]), np.hstack([start, hi])) for level, (lo, hi) in bands.items()}
    drawn = {
        "test_prices": price_figure(
            dates,
            origins_1.actual[:, 0],
            next_step[:, 0],
            origins_1.anchor,
            title,
            datamodule.target,
            dm_pvalue=metrics.get("test/dm_pvalue"),
        ),
        "horizon_errors": horizon_figure(
            horizons, {k: v for k, v in NAMES.items() if k in forecasts}, title, datamodule.target
        ),
        "forecast_fan": fan_figure(
            datamodule.series.dates[rows[0] - datamodule.window : rows[-1] + steps + 1],
            levels[rows[0] - datamodule.window : rows[-1] + steps + 1],
            np.concatenate([multi.origin_dates.values[:, None], multi.target_dates], axis=1),
            np.hstack([start, paths]),
            shown,
            f"{steps}-step forecasts from the last test origins, {steps} bars apart: {title}",
            datamodule.target,
            bands=fan_bands,
        ),
    }
    if equity is not None:
        drawn["trading"] = equity_figure(dates, *equity, metrics, title)
    return Report(metrics, predictions, horizons, drawn, interval_state, scored)


def _forecasts(
    model: RecurrentForecaster, datamodule: PriceDataModule, combination: Combination, steps: int, levels: tuple
) -> tuple[np.ndarray, Origins, np.ndarray, Bands]:
    """From every test origin whose ``steps`` targets lie in the test period: the combined forecasts (M, steps),
    the origins, the calls (the chosen strategy's forecasts before any pull toward the last price) and the base
    bands the intervals at ``levels`` widen (pricernn.forecasting.multistep.base_bands)."""
    windows, rows, targets = datamodule.forecast_origins("test", steps)
    anchor, series = torch.as_tensor(targets.anchor, dtype=torch.float32), torch.as_tensor(targets.series)
    paths = strategy_paths(model, windows, anchor, steps, series, targets.path)
    origins = Origins(rows, targets.origin_dates, targets.target_dates, targets.anchor, targets.actual)
    combined, calls = combination.apply(paths, targets.anchor), combination.unshrunk().apply(paths, targets.anchor)
    return combined, origins, calls, base_bands(model, windows, anchor, combined, levels, series)


def _fit_ar(levels: np.ndarray, train_rows: int) -> AutoRegression | None:
    """The AR(p) baseline of log returns fitted on the first ``train_rows`` prices, or None (said once) where a
    price of the series is not positive: it forecasts log returns, which such a price does not have."""
    if (levels > 0).all():
        return AutoRegression.fit(levels[:train_rows])
    log.info("no AR baseline: the prices are not all positive, so they have no log returns")
    return None


def _baselines(
    levels: np.ndarray, origins: np.ndarray, steps: int, ma_window: int, ar: AutoRegression | None
) -> dict[str, np.ndarray]:
    forecasts = baseline_forecasts(levels, origins, steps, ma_window)
    if ar is not None:
        forecasts["ar"] = ar.forecast(levels, origins, steps)
    return forecasts


def _predictions_frame(origins: Origins, predicted: np.ndarray, bands: dict, stamp: str) -> pd.DataFrame:
    """One row per test target of the next step: its date, the actual price, the forecast, its bands and
    naive's forecast."""
    frame = pd.DataFrame(
        {
            "date": pd.to_datetime(origins.target_dates[:, 0]).strftime(stamp),
            "actual": origins.actual[:, 0],
            "predicted": predicted[:, 0],
        }
    )
    for level, (lower, upper) in bands.items():
        frame[f"lower_{round(100 * level)}"], frame[f"upper_{round(100 * level)}"] = lower[:, 0], upper[:, 0]
    frame["naive"] = origins.anchor
    return frame


@dataclass(frozen=True)
class _Intervals:
    """How the report draws and scores intervals: the validation calibration (None: no intervals), the method
    (``conformal`` or ``aci``) and the training prices the random-walk baseline's volatility comes from."""

    calibration: Conformal | None
    method: str
    gamma: float
    train_levels: np.ndarray

    @property
    def levels(self) -> tuple[float, ...]:
        return self.calibration.levels if self.calibration is not None else ()

    def score(self, metrics: dict, origins: Origins, bases: Bands, per_horizon: bool) -> tuple[dict, dict, dict]:
        """Add the model's and the random walk's interval scores to ``metrics``; return the model's bands, the
        calibration to forecast with from here (a checkpoint's ``pricernn_intervals``) and the walk's bands."""
        if self.calibration is None:
            return {}, {}, {}
        values = [origins.actual, *(b for band in bases.values() for b in band)]
        if self.calibration.positive and not all((v > 0).all() for v in values):
            log.warning("no intervals: they were calibrated on log ratios of positive prices, and the test period "
                        "has prices that are not positive")  # fmt: skip
            return {}, {}, {}
        if self.method == "aci":  # forecasts after the test period go on from the adapted widths
            bands, final = self.calibration.adaptive_bands(origins.actual, bases, self.gamma)
            state = self.calibration.to_dict(final)
        elif self.method == "quantile":  # the quantile model's own bands, uncalibrated
            bands = bases
            state = self.calibration.to_dict({level: np.zeros(lo.shape[1]) for level, (lo, _) in bases.items()})
        else:
            bands, state = self.calibration.bands(bases), self.calibration.to_dict()
        steps = origins.actual.shape[1]
        walk = random_walk_bands(self.train_levels, origins.anchor, steps, self.levels)
        metrics.update(score_intervals(origins.actual, bands, "test", per_horizon))
        metrics.update(score_intervals(origins.actual, walk, "naive", per_horizon))
        return bands, state, walk


def drift_metrics(actual: np.ndarray, anchor: np.ndarray, forecast: np.ndarray, combination: Combination) -> dict:
    """Per horizon h, the forecasts' drift and the test period's mean move, in basis points a bar: the mean log
    move of the forecasts (M, steps) and of the ``actual`` prices from the origins' ``anchor`` (M,), divided by h
    (``test/h{h}/drift_bp``, ``test/h{h}/move_bp``), and the drift the combination keeps (``eval/drift_bp``). They
    describe the test period; nothing is fitted on them. None where a price is not positive (no log moves)."""
    metrics = {"eval/drift_bp": 1e4 * combination.drift}
    if not ((anchor > 0).all() and (actual > 0).all() and (forecast > 0).all()):
        return metrics
    horizon = np.arange(1, actual.shape[1] + 1)
    drift = 1e4 * np.log(forecast / anchor[:, None]).mean(axis=0) / horizon
    move = 1e4 * np.log(actual / anchor[:, None]).mean(axis=0) / horizon
    for h, d, m in zip(horizon, drift, move, strict=True):
        metrics[f"test/h{h}/drift_bp"], metrics[f"test/h{h}/move_bp"] = float(d), float(m)
    return metrics


def horizon_table(
    metrics: dict, steps: int, names: list[str], combination: Combination, levels: tuple[float, ...]
) -> pd.DataFrame:
    rows = []
    model_keys = ("mae", "mape", "skill", "mase", "directional_accuracy", "dm_stat", "dm_pvalue")
    model_keys += ("dm_ar_pvalue", "ic", "ic_pvalue", "dir_pvalue")
    for h in range(1, steps + 1):
        row = {"horizon": h, "strategy": combination.strategy(h - 1), "shrink": combination.weight(h - 1)}
        row["drift_bp"] = metrics.get(f"test/h{h}/drift_bp", float("nan"))  # the forecasts', a bar
        row["test_move_bp"] = metrics.get(f"test/h{h}/move_bp", float("nan"))  # the test period's, a bar
        for name in names:
            row[f"{name}_rmse"] = metrics[f"{name}/h{h}/rmse"]
        for key in model_keys:
            row[key] = metrics.get(f"test/h{h}/{key}", float("nan"))
        for tag in (f"{round(100 * level)}" for level in levels):
            for name in ("test", "naive"):
                for key in ("coverage", "width"):
                    row[f"{'model' if name == 'test' else name}_{key}_{tag}"] = metrics[f"{name}/h{h}/{key}_{tag}"]
        rows.append(row)
    return pd.DataFrame(rows).rename(columns={"test_rmse": "model_rmse"})
