"""The text a user reads after a run: the model beside the baselines, and a verdict that claims only what a test
supports."""

from __future__ import annotations

import numpy as np

from pricernn.evaluation import SIGNIFICANCE
from pricernn.reporting.report import NAMES


def _p(value: float) -> str:
    return "< 1e-6" if value < 1e-6 else f"{value:.3g}"


def verdict(metrics: dict, model: str = "test", prefix: str = "") -> str:
    """One line of evidence and what it supports.

    "beats the last price" only where Diebold-Mariano says so (the one pre-registered test of accuracy); "its
    moves carry information" where the information coefficient or the direction test does, with Holm's
    correction for asking two questions (the smaller p-value below 0.025); "no evidence of skill" otherwise. A
    horizon whose forecast the validation period pulled all the way to the last price (λ = 0) says so first.
    """
    found = {k.removeprefix(f"{model}/{prefix}"): v for k, v in metrics.items() if k.startswith(f"{model}/{prefix}")}
    skill, dm_stat, dm_p = found["skill"], found.get("dm_stat", float("nan")), found.get("dm_pvalue", 1.0)
    ic, ic_p = found.get("ic", float("nan")), found.get("ic_pvalue", 1.0)
    direction = "pt" if "pt_pvalue" in found else "dir"
    dir_stat, dir_p = found.get(f"{direction}_stat", float("nan")), found.get(f"{direction}_pvalue", 1.0)
    facts = [f"skill {100 * skill:+.2f} %", f"DM p {_p(dm_p)}"]
    if np.isfinite(ic):
        facts.append(f"IC {ic:+.3f}" + (f" (p {_p(ic_p)})" if "ic_pvalue" in found else ""))
    if found.get("directional_accuracy") is not None:
        facts.append(f"direction {100 * found['directional_accuracy']:.1f} %")
    if f"{direction}_pvalue" in found:  # undefined when the model calls one direction only: nothing to test
        label = "PT" if direction == "pt" else "direction test"
        facts.append(f"{label} p {_p(dir_p)}" if np.isfinite(dir_stat) else f"{label} n/a (one direction called)")
    if found.get("shrink") == 0.0 and metrics.get("eval/drift_bp"):
        conclusion = (f"no signal on validation, so the forecast is the last price moved by the kept drift "
                      f"({metrics['eval/drift_bp']:+.1f} bp a bar; λ = 0)")  # fmt: skip
    elif found.get("shrink") == 0.0:
        conclusion = "no signal on validation, so the forecast is the last price (λ = 0)"
    elif dm_p < SIGNIFICANCE and dm_stat < 0:
        conclusion = "beats the last price significantly"
    elif dm_p < SIGNIFICANCE:
        conclusion = "significantly WORSE than the last price"
    elif min(ic_p if ic > 0 else 1.0, dir_p) < SIGNIFICANCE / 2:
        conclusion = "its moves carry information (IC or direction test), but its errors are not below naive's"
    else:
        conclusion = "no evidence of skill beyond the last price"
    return f"{conclusion}: {', '.join(facts)}"


def _cell(value: float | None, fmt: str, width: int) -> str:
    """A table cell; "–" where a figure does not apply (naive's direction, a baseline the data do not allow)."""
    return f"{'–':>{width}}" if value is None or not np.isfinite(value) else f"{value:{fmt}}".rjust(width)


def shown_horizons(metrics: dict, steps: int) -> list[int]:
    """The horizons the summary's table shows: 1, 2, 3, 5, 10, 20 and the last, and every horizon whose weight on
    the model (λ) differs from the one before, so that no forecast unlike its neighbours hides between rows."""
    weights = [metrics.get(f"test/h{h}/shrink") for h in range(1, steps + 1)]
    changed = {h for h in range(2, steps + 1) if weights[h - 1] != weights[h - 2]}
    return sorted({h for h in (1, 2, 3, 5, 10, 20, steps) if h <= steps} | changed)


def drift_against_test(metrics: dict, steps: int) -> str:
    """A line where the forecasts' mean move (``test/h{h}/drift_bp``) and the test period's (``move_bp``) have
    opposite signs at some horizon: the forecasts leaned against what the test period did; "" otherwise."""
    found = {}
    for h in range(1, steps + 1):
        drift, move = metrics.get(f"test/h{h}/drift_bp", 0.0), metrics.get(f"test/h{h}/move_bp", 0.0)
        if drift * move < 0:
            found[h] = (drift, move)
    if not found:
        return ""
    last = max(found)
    drift, move = found[last]
    where = ",".join(map(str, found)) if len(found) <= 6 else f"{len(found)} horizons up to {last}"
    return (
        f"drift: at h={where} the forecasts moved {'up' if drift > 0 else 'down'} on average ({drift:+.1f} bp a bar at "
        f"h={last}) while the test period {'rose' if move > 0 else 'fell'} ({move:+.1f} bp a bar); the drift kept "
        f"from training is {metrics.get('eval/drift_bp', 0.0):+.1f} bp a bar, the rest is the network's calls"
    )


def summary(metrics: dict, period: tuple[str, str], unit: str, bar: str = "day", intervals: str = "") -> str:
    """The lines a user reads after a run: model beside the baselines in price units, and what the tests say;
    ``bar`` names one bar ("day", "hour", "month": pricernn.data.frequency.bar_word); ``intervals`` names how the
    prediction intervals were made."""
    names = {k: v for k, v in NAMES.items() if f"{k}/rmse" in metrics}
    if "ar/order" in metrics:  # the order AIC chose on the training period
        names["ar"] = f"AR({int(metrics['ar/order'])})"
    rows = [
        f"Test period {period[0]} .. {period[1]}, errors in {unit} price units (next step, every test {bar}):",
        f"{'':12}{'RMSE':>10}{'MAE':>10}{'MAPE %':>9}{'MASE':>8}{'skill':>8}{'dir.acc':>9}",
    ]
    for name, label in names.items():
        m = {k: metrics[f"{name}/{k}"] for k in ("rmse", "mae", "mape", "mase", "skill", "directional_accuracy")}
        rows.append(
            f"{label:12}{m['rmse']:10.3f}{m['mae']:10.3f}{m['mape']:9.3f}{m['mase']:8.3f}{m['skill']:8.4f}"
            + _cell(m["directional_accuracy"], ".3f", 9)
        )
    rows.append(f"next {bar}: {verdict(metrics)}")
    if "panel/series" in metrics:
        rows.append(_panel_line(metrics))
    if "trade/sharpe" in metrics:
        rows.append(_trading_line(metrics))
    steps = int(metrics.get("eval/steps", 1))
    if steps > 1:
        shown = shown_horizons(metrics, steps)
        rows.append(
            f"Forecasts from {int(metrics['eval/origins'])} test origins, RMSE per horizon (λ: the weight on the "
            "model, 1 - λ on the last price, fitted on validation; move: the forecasts' drift, their mean move in bp "
            "a bar):"
        )
        rows.append(
            f"{'h':>4}"
            + "".join(f"{label:>11}" for label in names.values())
            + f"{'skill':>9}{'DM p':>9}{'IC':>8}{'λ':>6}{'move':>7}"
        )
        for h in shown:
            cells = "".join(f"{metrics[f'{n}/h{h}/rmse']:11.3f}" for n in names)
            rows.append(
                f"{h:4d}{cells}{metrics[f'test/h{h}/skill']:9.4f}{metrics[f'test/h{h}/dm_pvalue']:9.3g}"
                + _cell(metrics.get(f"test/h{h}/ic"), "+.3f", 8)
                + _cell(metrics.get(f"test/h{h}/shrink"), ".2f", 6)
                + _cell(metrics.get(f"test/h{h}/drift_bp"), "+.1f", 7)
            )
        rows.append(f"h={steps}: {verdict(metrics, prefix=f'h{steps}/')}")
        against = drift_against_test(metrics, steps)
        if against:
            rows.append(against)
    rows += [_interval_line(metrics, h, intervals) for h in sorted({1, steps})
             if any(k.startswith(f"test/h{h}/coverage_") for k in metrics)]  # fmt: skip
    return "\n".join(rows)


def _interval_line(metrics: dict, h: int, method: str) -> str:
    """How the prediction intervals at horizon ``h`` did on the test targets (coverage, mean width in price units,
    Winkler score: lower is better), beside a random walk's bands. At h = 1 the headline figures, from every test
    origin (as predictions.csv and the leaderboard have them); beyond, from the origins of the per-horizon table."""
    at = "" if h == 1 else f"h{h}/"
    levels = sorted(int(k.rsplit("_", 1)[1]) for k in metrics if k.startswith(f"test/{at}coverage_"))

    def scores(name: str) -> str:
        return "; ".join(
            f"{lv} % cover {100 * metrics[f'{name}/{at}coverage_{lv}']:.1f} %, width "
            f"{metrics[f'{name}/{at}width_{lv}']:#.4g}, Winkler {metrics[f'{name}/{at}winkler_{lv}']:#.4g}"
            for lv in levels
        )

    return f"intervals at h={h} ({method}): {scores('test')} | random walk: {scores('naive')}"


def _panel_line(metrics: dict) -> str:
    """How the assets of a panel fare one by one (pricernn.reporting.pooled.panel_headline)."""
    n = int(metrics["panel/series"])

    def count(key: str) -> int:
        return round(n * metrics[key])

    return (
        f"{n} assets, one model: below naive's RMSE on {count('test/share_beating_naive')} of {n} (median ratio "
        f"{metrics['test/median_rmse_ratio']:.4f}); significantly better on {count('test/share_significantly_better')}"
        f", worse on {count('test/share_significantly_worse')} (Diebold-Mariano, Benjamini-Hochberg 5 %); pooled "
        "figures above are over all assets' test days, their DM p on each day's mean relative loss across assets; "
        "per asset: per_symbol.csv"
        + (
            f"; {int(metrics['panel/not_scored'])} not scored (too few test bars)"
            if metrics.get("panel/not_scored")
            else ""
        )
    )


def _trading_line(metrics: dict) -> str:
    """The sign strategy after costs beside buy-and-hold, in one line; n/a where the test period is too short."""
    t = {k.removeprefix("trade/"): v for k, v in metrics.items() if k.startswith("trade/")}
    b = {k.removeprefix("buyhold/"): v for k, v in metrics.items() if k.startswith("buyhold/")}
    if t.get("exposure") == 0:
        return "trading the sign: no position (the forecasts call no direction)"
    if not np.isfinite(t["sharpe"]):
        return "trading the sign after costs: n/a (too few test bars to annualise)"
    edge = "beats holding" if t["vs_hold_pvalue"] < SIGNIFICANCE else "not distinguishable from holding"
    return (
        f"trading the sign after costs: {100 * t['annual_return']:+.1f} % a year, Sharpe {t['sharpe']:.2f}, max "
        f"drawdown {100 * t['max_drawdown']:.0f} %; buy-and-hold: {100 * b['annual_return']:+.1f} % a year, Sharpe "
        f"{b['sharpe']:.2f}, max drawdown {100 * b['max_drawdown']:.0f} %; {edge} (p {t['vs_hold_pvalue']:.3g})"
    )


def interval_label(method: str, loss: str) -> str:
    """How the intervals were made, in words: the method, and whether it calibrates a quantile model's bands."""
    if method == "quantile":
        return "learned quantiles, uncalibrated"
    name = {"aci": "adaptive conformal, ACI", "conformal": "split conformal"}[method]
    return f"{name}, around learned quantiles (CQR)" if loss == "quantile" else name
