"""The report of one model over a panel: every series scored alone by
:func:`pricernn.reporting.report.build_report` (its own baselines, AR fit, adaptive intervals and trading check),
then pooled.

Pooled figures are over all test targets of all series, in price units as for one series (``test/rmse`` and the
rest); beside them how many assets the model beats, and per asset one row of ``per_symbol.csv``. Tests on the
pool respect that assets move together on the same day: Diebold-Mariano on the cross-sectional mean loss
differential per date, of errors relative to the last price so that each asset counts alike; across assets,
p-values are adjusted by Benjamini-Hochberg.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from pricernn.data import PriceDataModule
from pricernn.data.frequency import bar_word
from pricernn.errors import check
from pricernn.evaluation import score_forecasts
from pricernn.evaluation.intervals import Conformal, score_intervals
from pricernn.evaluation.significance import SIGNIFICANCE, benjamini_hochberg, panel_diebold_mariano
from pricernn.forecasting.combination import Combination
from pricernn.forecasting.multistep import scored_steps
from pricernn.models import RecurrentForecaster
from pricernn.reporting.plots import horizon_figure, symbol_figure
from pricernn.reporting.report import NAMES, Report, Scored, build_report, drift_metrics, horizon_table

log = logging.getLogger("pricernn")
# Tests whose p-values read the pooled rows as one time series; with several assets per date they would be too
# small. Their per-asset values are in per_symbol.csv, adjusted across assets.
STACKED_TESTS = ("dm_ar_stat", "dm_ar_pvalue", "ic_pvalue", "pt_stat", "pt_pvalue", "dir_stat", "dir_pvalue")
# per_symbol.csv: column ← the asset's metric (next step, every test origin)
PER_SYMBOL = {
    "origins": "eval/origins_next",
    "test_rmse": "test/rmse",
    "naive_rmse": "naive/rmse",
    "rmse_ratio": "test/rmse_ratio_naive",
    "skill": "test/skill",
    "dm_stat": "test/dm_stat",
    "dm_pvalue": "test/dm_pvalue",
    "ic": "test/ic",
    "ic_pvalue": "test/ic_pvalue",
    "directional_accuracy": "test/directional_accuracy",
    "pt_pvalue": "test/pt_pvalue",
    "ar_rmse_ratio": "test/rmse_ratio_ar",
    "coverage_80": "test/coverage_80",
    "width_80": "test/width_80",
    "sharpe": "trade/sharpe",
    "hold_sharpe": "buyhold/sharpe",
}


def panel_report(
    model: RecurrentForecaster,
    datamodule: PriceDataModule,
    combination: Combination,
    calibrations: list[Conformal] | None = None,
    steps: int = 10,
    title: str = "",
    **evaluation: object,
) -> Report:
    """Score the model on every series of the panel, then pool (module docstring). ``evaluation``: the keyword
    arguments of :func:`~pricernn.reporting.report.build_report` (ma_window, trading, interval_method, ...)."""
    scored_steps_ = scored_steps(model, steps)
    parts, symbols, short = [], [], []
    for k, symbol in enumerate(datamodule.series.symbols):
        view = datamodule.part(k)
        if len(view.series.dates) - view.rows[1] < scored_steps_:  # no origin whose every horizon is in the test
            short.append(symbol)
            continue
        calibration = calibrations[k] if calibrations else None
        part = build_report(model, view, combination, calibration, steps=steps, title=f"{title} {symbol}",
                            figures=False, **evaluation)  # fmt: skip
        part.metrics["eval/origins_next"] = len(part.predictions)
        parts.append(part)
        symbols.append(symbol)
    if short:
        log.warning("not scored: %s, with fewer test bars than evaluation.steps=%d", ", ".join(short), scored_steps_)
    check(parts, f"no series has evaluation.steps={scored_steps_} bars in the test period")
    scale = datamodule.naive_mae_train
    metrics = _pooled(parts, "next", scale, per_horizon=False)
    metrics["test/rmse_ratio_naive"] = metrics["test/rmse"] / metrics["naive/rmse"]
    metrics["test/shrink"] = combination.weight(0)
    metrics.update(_pooled(parts, "multi", scale, per_horizon=True))
    steps = parts[0].scored["multi"].origins.actual.shape[1]
    metrics.update({f"test/h{h + 1}/shrink": combination.weight(h) for h in range(steps)})
    multi = [p.scored["multi"] for p in parts]
    actual, anchor = (np.concatenate([getattr(s.origins, k) for s in multi]) for k in ("actual", "anchor"))
    metrics.update(drift_metrics(actual, anchor, np.concatenate([s.forecasts["test"] for s in multi]), combination))
    metrics["eval/steps"] = steps
    metrics["eval/origins"] = sum(len(p.scored["multi"].origins.anchor) for p in parts)
    if steps > 1:
        metrics["test/rmse_ratio_naive_last_h"] = metrics[f"test/h{steps}/rmse"] / metrics[f"naive/h{steps}/rmse"]
    table = per_symbol_table(parts, tuple(symbols))
    metrics.update(panel_headline(table))
    metrics["panel/not_scored"] = len(short)

    names = [n for n in NAMES if f"{n}/h1/rmse" in metrics]
    levels = tuple(parts[0].scored["multi"].bands)
    horizons = horizon_table(metrics, steps, names, combination, levels)
    predictions = pd.concat([p.predictions.assign(symbol=s) for p, s in zip(parts, symbols, strict=True)])
    predictions = predictions[["symbol", *parts[0].predictions.columns]]
    figures = {
        "per_symbol_skill": symbol_figure(table, f"{title}: next-{bar_word(datamodule.frequency)} skill per asset"),
        "horizon_errors": horizon_figure(
            horizons, {k: v for k, v in NAMES.items() if k in names}, title, datamodule.target
        ),
    }
    intervals = {"symbols": {s: p.intervals for p, s in zip(parts, symbols, strict=True) if p.intervals}}
    return Report(metrics, predictions, horizons, figures, intervals if intervals["symbols"] else {}, {}, table)


def _pooled(parts: list[Report], key: str, scale: float, per_horizon: bool) -> dict:
    """The scores of all series' forecasts of evaluation ``key`` stacked (pooled means in price units), with
    Diebold-Mariano on the cross-sectional mean per date in place of the stacked rows' tests."""
    scored: list[Scored] = [p.scored[key] for p in parts]
    shared = [n for n in scored[0].forecasts if all(n in s.forecasts for s in scored)]  # AR: where all have it
    actual = np.concatenate([s.origins.actual for s in scored])
    anchor = np.concatenate([s.origins.anchor for s in scored])
    forecasts = {n: np.concatenate([s.forecasts[n] for s in scored]) for n in shared}
    calls = np.concatenate([s.calls for s in scored])
    metrics = score_forecasts(actual, forecasts, anchor, scale, per_horizon=per_horizon, calls_from=calls)
    dates = np.concatenate([s.origins.origin_dates.values for s in scored])
    for h in range(actual.shape[1]):
        prefix = f"h{h + 1}/" if per_horizon else ""
        for test in STACKED_TESTS:
            metrics.pop(f"test/{prefix}{test}", None)
        # relative errors: each asset counts alike, whatever its price (a $500 stock's error is not 100 $5 ones')
        errors = ((forecasts[n][:, h] - actual[:, h]) / anchor for n in ("test", "naive"))
        stat, p = panel_diebold_mariano(*errors, dates, horizon=h + 1 if per_horizon else 1)
        metrics[f"test/{prefix}dm_stat"], metrics[f"test/{prefix}dm_pvalue"] = stat, p
    if all(s.bands for s in scored):
        for name, bands in (("test", [s.bands for s in scored]), ("naive", [s.walk for s in scored])):
            stacked = {lv: tuple(np.concatenate([b[lv][i] for b in bands]) for i in (0, 1)) for lv in bands[0]}
            metrics.update(score_intervals(actual, stacked, name, per_horizon))
    return metrics


def per_symbol_table(parts: list[Report], symbols: tuple[str, ...]) -> pd.DataFrame:
    """One row per asset: its next-step scores beside naive's, Diebold-Mariano's p-value and the same adjusted
    across assets by Benjamini-Hochberg (``dm_pvalue_bh``), IC, direction, intervals and the trading check."""
    rows = []
    for part, symbol in zip(parts, symbols, strict=True):
        row = {"symbol": symbol}
        row.update({column: part.metrics.get(key, np.nan) for column, key in PER_SYMBOL.items()})
        rows.append(row)
    table = pd.DataFrame(rows)
    table.insert(table.columns.get_loc("dm_pvalue") + 1, "dm_pvalue_bh", benjamini_hochberg(table["dm_pvalue"]))
    return table


def panel_headline(table: pd.DataFrame) -> dict[str, float]:
    """How the assets fare one by one: the median RMSE ratio to naive, the share below 1, and the shares
    significantly better and worse than naive (Diebold-Mariano, Benjamini-Hochberg at 5 %)."""
    ratio = table["rmse_ratio"].to_numpy(dtype=float)
    significant = table["dm_pvalue_bh"].to_numpy(dtype=float) < SIGNIFICANCE
    better = np.nan_to_num(table["dm_stat"].to_numpy(dtype=float)) < 0
    return {
        "panel/series": len(table),
        "test/median_rmse_ratio": float(np.nanmedian(ratio)),
        "test/share_beating_naive": float(np.mean(ratio < 1)),
        "test/share_significantly_better": float(np.mean(significant & better)),
        "test/share_significantly_worse": float(np.mean(significant & ~better)),
    }
