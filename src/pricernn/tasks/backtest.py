"""Walk-forward backtest: K consecutive test folds, each with an expanding training window and its own refit.

The folds tile the test period that ``data.split`` (or ``data.test_start``) defines. Fold k is an ordinary
training run whose data ends at the last day of its test block (``data.end``), whose validation block is the
same length as the configured validation period and sits right before the test block, and whose training
period is everything earlier. The scaler and the model are fitted from scratch per fold, so nothing fitted
ever sees the fold's test period or anything after it.
"""

from __future__ import annotations

import logging
from dataclasses import fields
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from pricernn.checkpoints import config_from_checkpoint
from pricernn.config.validate import BacktestConfig, TrainConfig, validate
from pricernn.data import PriceDataModule
from pricernn.data.frequency import stamp_format
from pricernn.data.preprocess import split_rows
from pricernn.errors import check
from pricernn.files import write_atomic, write_json
from pricernn.reporting.plots import backtest_figure, render
from pricernn.tasks.train import run_label, run_name, shown_path, train

log = logging.getLogger("pricernn")

TRAIN_KEYS = [f.name for f in fields(TrainConfig)]  # a fold is a training run: the backtest's own keys stay out
FOLD_COLUMNS = (
    "rmse",
    "mae",
    "mape",
    "mase",
    "skill",
    "directional_accuracy",
    "dm_stat",
    "dm_pvalue",
    "ic",
    "pt_pvalue",
    "coverage_80",
    "width_80",
)
PANEL_COLUMNS = ("median_rmse_ratio", "share_beating_naive")  # a panel: how the assets fare one by one
TRADE_COLUMNS = ("trade/annual_return", "trade/sharpe", "trade/max_drawdown", "buyhold/annual_return", "buyhold/sharpe")


def fold_periods(cfg: DictConfig) -> list[dict[str, str]]:
    """``data.val_start``, ``data.test_start`` and ``data.end`` of each of the ``cfg.folds`` folds: they tile the
    test period of the configured data (up to ``data.end``, when given), on the dates of all its series."""
    folds, data = int(cfg.folds), cfg.data
    history = PriceDataModule(**data)
    dates = pd.DatetimeIndex(np.unique(np.concatenate([part.dates.values for part in history.prepare_series()])))
    val_row, test_row = split_rows(dates, data.window, data.horizon, data.split, data.val_start, data.test_start)
    n_val, blocks = test_row - val_row, np.array_split(np.arange(test_row, len(dates)), folds)
    steps = max(int(cfg.evaluation.steps), int(data.horizon))
    shortest = min(len(b) for b in blocks)
    check(
        shortest > steps,
        f"folds={folds} leaves {shortest} test row{'s' if shortest != 1 else ''} per fold, too few for "
        f"evaluation.steps={steps}: "
        f"use fewer folds or a shorter evaluation.steps",
    )
    iso = list(dates.strftime(stamp_format(history.frequency)))
    return [{"val_start": iso[b[0] - n_val], "test_start": iso[b[0]], "end": iso[b[-1]]} for b in blocks]


def backtest(cfg: DictConfig, run_dir: str | Path, task_overrides: list[str] = ()) -> dict[str, float]:
    """Train and test one model per fold under ``run_dir/fold<k>``; write folds.csv, metrics.json and
    backtest.png; log every fold and the summary to TensorBoard; return the summary metrics. With ``cfg.ckpt``
    the setup is that of the run behind the checkpoint, changed only by the keys in ``task_overrides``."""
    if cfg.get("ckpt"):
        cfg = config_from_checkpoint(cfg, cfg.ckpt, list(task_overrides))
    cfg = validate(cfg, BacktestConfig)
    run_dir = Path(run_dir)
    print(f"backtest directory: {shown_path(run_dir)}", flush=True)
    periods = fold_periods(cfg)
    name = f"{run_name(cfg)}/backtest"
    stamp = run_label(run_dir, cfg.logger.save_dir, name)  # TensorBoard's runs are named by the backtest's folder
    rows = []
    for k, period in enumerate(periods):
        log.info("fold%d (%d of %d): validation from %s, test %s .. %s", k, k + 1, len(periods), *period.values())
        fold_cfg = OmegaConf.merge(OmegaConf.masked_copy(cfg, TRAIN_KEYS), {"data": period})
        metrics = train(fold_cfg, run_dir / f"fold{k}", tb_name=name, tb_version=f"{stamp}/fold{k}")
        # the longest horizon scored: evaluation.steps, or the model's own horizon when it cannot recurse
        steps = int(metrics["eval/steps"])
        row = {"fold": k, "test_start": period["test_start"], "test_end": period["end"]}
        row.update({c: metrics.get(f"test/{c}", float("nan")) for c in FOLD_COLUMNS})
        # no trading check on prices that are not all positive, nor pooled over a panel's assets
        row.update({c.replace("/", "_"): metrics.get(c, float("nan")) for c in TRADE_COLUMNS})
        row.update({k: metrics[f"test/{k}"] for k in PANEL_COLUMNS if f"test/{k}" in metrics})
        row["naive_rmse"] = metrics["naive/rmse"]
        row[f"h{steps}_skill"] = metrics[f"test/h{steps}/skill"]
        row[f"h{steps}_dm_pvalue"] = metrics[f"test/h{steps}/dm_pvalue"]
        rows.append(row)
    folds = pd.DataFrame(rows)

    summary = aggregate(folds, steps)
    write_atomic(run_dir / "folds.csv", folds.to_csv(index=False, float_format="%.6g"))
    write_json(run_dir / "metrics.json", summary)
    figure = backtest_figure(folds, f"Walk-forward backtest, {run_name(cfg)}", cfg.data.target)
    _log_summary(cfg, name, f"{stamp}/summary", folds, summary, render(figure, run_dir / "backtest.png"))
    print(fold_table(folds, summary, steps), flush=True)
    print(f"results in {shown_path(run_dir)}/: folds.csv, metrics.json, backtest.png; each fold's run in fold<k>/")
    return summary


def aggregate(folds: pd.DataFrame, steps: int) -> dict[str, float | None]:
    """Mean and spread over folds (no spread, None, for a single fold), and the share of folds in which the model
    beats naive."""
    out = {"backtest/folds": len(folds)}
    means = ("rmse", "naive_rmse", "mae", "mase", "skill", "directional_accuracy", "ic", f"h{steps}_skill")
    for column in (*means, "trade_sharpe", "buyhold_sharpe"):
        key = column.replace("_skill", "/skill") if column.startswith("h") else column
        out[f"backtest/{key}_mean"] = float(folds[column].mean())
        out[f"backtest/{key}_std"] = float(folds[column].std(ddof=1)) if len(folds) > 1 else None
    out["backtest/rmse_ratio_mean"] = float((folds["rmse"] / folds["naive_rmse"]).mean())
    out["backtest/win_share"] = float((folds["skill"] > 0).mean())
    out["backtest/significant_win_share"] = float(((folds["dm_stat"] < 0) & (folds["dm_pvalue"] < 0.05)).mean())
    out[f"backtest/h{steps}/win_share"] = float((folds[f"h{steps}_skill"] > 0).mean())
    return out


def fold_table(folds: pd.DataFrame, summary: dict[str, float], steps: int) -> str:
    """The per-fold table and the summary line a user reads after a backtest."""
    lines = [
        "Walk-forward backtest: next-step errors per fold in price units; Sharpe of trading the sign after costs, and"
        " of holding",
        f"{'fold':>4}  {'test period':<24}{'RMSE':>9}{'naive':>9}{'skill':>9}{'DM p':>9}{'IC':>8}"
        f"{f'h{steps} skill':>11}{'Sharpe':>8}{'hold':>7}",
    ]
    for r in folds.itertuples():
        period = f"{r.test_start} .. {r.test_end}"
        lines.append(
            f"{r.fold:4d}  {period:<24}{r.rmse:9.3f}{r.naive_rmse:9.3f}{r.skill:9.4f}{r.dm_pvalue:9.3g}{r.ic:8.3f}"
            f"{getattr(r, f'h{steps}_skill'):11.4f}{_cell(r.trade_sharpe, '.2f', 8)}{_cell(r.buyhold_sharpe, '.2f', 7)}"
        )
    spread = summary["backtest/skill_std"]
    lines.append(
        f"skill vs naive {summary['backtest/skill_mean']:+.4f} ± {'n/a' if spread is None else f'{spread:.4f}'} "
        "(mean ± std); "
        f"model beats naive in {summary['backtest/win_share']:.0%} of folds, "
        f"significantly (DM p < 0.05) in {summary['backtest/significant_win_share']:.0%}"
    )
    return "\n".join(lines)


def _cell(value: float, fmt: str, width: int) -> str:
    """A number, or "–" where it does not apply (no trading check on a panel or on prices that are not positive)."""
    return (f"{value:{fmt}}" if np.isfinite(value) else "–").rjust(width)


def _log_summary(
    cfg: DictConfig, name: str, version: str, folds: pd.DataFrame, summary: dict, pixels: np.ndarray
) -> None:
    from hydra.utils import instantiate

    logger = instantiate(cfg.logger, name=name, version=version)
    for r in folds.itertuples():
        logger.log_metrics({"backtest/fold_skill": r.skill, "backtest/fold_rmse_ratio": r.rmse / r.naive_rmse}, r.fold)
    logger.log_metrics({k: v for k, v in summary.items() if v is not None}, step=len(folds))
    logger.experiment.add_image("backtest/folds", pixels, global_step=len(folds), dataformats="HWC")
    logger.finalize("success")
