"""Prediction intervals around price forecasts and how to score them.

- :class:`Conformal`: split conformal prediction (Vovk, Gammerman & Shafer 2005; Lei et al. 2018, "Distribution-
  free predictive inference for regression", JASA 113) per horizon, from the validation period's residuals on the
  scale the model works in: log(actual / forecast) for positive prices, price differences otherwise.
- :func:`adaptive_bands`: adaptive conformal inference (Gibbs & Candès 2021, "Adaptive conformal inference under
  distribution shift", NeurIPS), which moves each level's miscoverage rate as test targets are revealed.
- :func:`random_walk_bands`: the baseline, a random walk with the training period's log-return volatility and
  √h scaling.
- :func:`score_intervals`: coverage, mean width (price units), the Winkler interval score (Winkler 1972, "A
  decision-theoretic approach to interval estimation", JASA 67; Gneiting & Raftery 2007, eq. 43) and the pinball
  loss of the bands' quantiles (Koenker & Bassett 1978).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

log = logging.getLogger("pricernn")


def _relative(positive: bool, actual: np.ndarray, forecast: np.ndarray) -> np.ndarray:
    """Residuals on the model's scale: log(actual / forecast) for positive prices, else actual − forecast."""
    return np.log(actual / forecast) if positive else actual - forecast


def _band(positive: bool, forecast: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> tuple:
    """Residual quantiles ``lower``/``upper`` turned back into price bands around ``forecast``."""
    if positive:
        return forecast * np.exp(lower), forecast * np.exp(upper)
    return forecast + lower, forecast + upper


def conformal_quantile(scores: np.ndarray, alpha: float) -> float:
    """The split-conformal quantile of ``scores`` (n,) for miscoverage ``alpha``: the ⌈(n+1)(1−α)⌉-th smallest
    score (Lei et al. 2018, section 2.2), so that a new exchangeable score lies at or below it with probability
    ≥ 1 − α. With too few scores for that rank the largest one is used (the exact rule would give an infinite
    band)."""
    n = len(scores)
    rank = min(int(np.ceil((n + 1) * (1 - alpha))), n)
    return float(np.sort(scores)[rank - 1])


@dataclass(frozen=True)
class Conformal:
    """The validation period's absolute residuals per horizon, sorted (n, steps), on the model's scale
    (``positive``: log ratios, else price differences): split-conformal bands ``forecast · exp(±q)`` at any
    level, and the scores adaptive conformal inference starts from."""

    levels: tuple[float, ...]
    scores: np.ndarray
    positive: bool

    @classmethod
    def fit(cls, actual: np.ndarray, forecast: np.ndarray, levels: tuple[float, ...]) -> Conformal:
        """Calibrate on validation targets ``actual`` and the model's forecasts of them (M, steps)."""
        positive = bool((actual > 0).all() and (forecast > 0).all())
        return cls(tuple(levels), np.sort(np.abs(_relative(positive, actual, forecast)), axis=0), positive)

    def half_width(self, level: float) -> np.ndarray:
        """Per horizon, the conformal quantile of the scores at ``level``, on the residual scale (steps,)."""
        return np.array([conformal_quantile(self.scores[:, h], 1 - level) for h in range(self.scores.shape[1])])

    def bands(self, forecast: np.ndarray) -> dict[float, tuple[np.ndarray, np.ndarray]]:
        """Price bands (lower, upper), each like ``forecast`` (M, steps), per level."""
        steps = forecast.shape[1]
        out = {}
        for level in self.levels:
            q = self.half_width(level)[:steps]
            out[level] = _band(self.positive, forecast, -q, q)
        return out

    def adaptive_bands(self, actual: np.ndarray, forecast: np.ndarray, gamma: float) -> tuple[dict, dict]:
        """Adaptive conformal inference (Gibbs & Candès 2021, eq. 2) over test origins in time order: per level
        and horizon h the miscoverage rate follows α_{t+1} = α_t + γ(α − err_t), err_t = 1 when a target fell
        outside its band. The target of origin t at horizon h is known only at t + h, so origin t's rate uses the
        errors of origins up to t − h. The band is the (1 − α_t) conformal quantile of the validation scores;
        where α_t ≤ 0 (the paper's whole line) the largest score is used, so bands stay finite. Returns the bands
        per level and, per level, the half-widths (steps,) reached at the last origin: the state to go on from."""
        test_scores = np.abs(_relative(self.positive, actual, forecast))
        n, (m, steps) = len(self.scores), forecast.shape
        out, final = {}, {}
        for level in self.levels:
            alpha, half = 1 - level, np.empty((m, steps))
            for h in range(steps):
                rate = alpha
                for t in range(m):
                    if t > h:  # origin t − h − 1's target at horizon h + 1 is known at origin t
                        s = t - h - 1
                        rate += gamma * (alpha - float(test_scores[s, h] > half[s, h]))
                    rank = min(max(int(np.ceil((n + 1) * (1 - rate))), 1), n)
                    half[t, h] = self.scores[rank - 1, h]
            out[level], final[level] = _band(self.positive, forecast, -half, half), half[-1]
        return out, final

    def to_dict(self, half_widths: dict[float, np.ndarray] | None = None) -> dict:
        """Plain data for a checkpoint: the scale and each level's half-widths per horizon, the split-conformal
        ones unless ``half_widths`` (adaptive conformal's last state) are given."""
        widths = half_widths or {level: self.half_width(level) for level in self.levels}
        # forecasts get bands that widen with the horizon and nest by level; adaptive widths, each horizon's
        # tracked on its own, need not, so the smallest widths that do are kept
        stored, floor = {}, 0.0
        for level in sorted(widths):
            floor = np.maximum(np.maximum.accumulate(np.asarray(widths[level], dtype=float)), floor)
            stored[str(level)] = floor.tolist()
        return {"positive": self.positive, "half_widths": stored}


def bands_from_checkpoint(state: dict, forecast: np.ndarray) -> dict[float, tuple[np.ndarray, np.ndarray]]:
    """The split-conformal bands a checkpoint's calibration (:meth:`Conformal.to_dict`) gives ``forecast``."""
    steps = forecast.shape[1]
    out = {}
    for level, widths in state["half_widths"].items():
        q = np.asarray(widths, dtype=float)
        if steps > len(q):  # beyond the calibrated horizons: the last one's width, grown like a random walk's
            q = np.r_[q, q[-1] * np.sqrt(np.arange(len(q) + 1, steps + 1) / len(q))]
        out[float(level)] = _band(bool(state["positive"]), forecast, -q[:steps], q[:steps])
    if steps > len(q := next(iter(state["half_widths"].values()))):
        log.warning("intervals beyond step %d (the horizons calibrated at training) grow with √h from step %d's",
                    len(q), len(q))  # fmt: skip
    return out


def random_walk_bands(
    train_levels: np.ndarray, anchor: np.ndarray, steps: int, levels: tuple[float, ...]
) -> dict[float, tuple[np.ndarray, np.ndarray]]:
    """The baseline: from each origin's last price, a driftless random walk in log prices whose daily volatility
    is the training period's (σ√h at horizon h, normal quantiles). Prices that are not all positive use price
    changes instead of log returns."""
    positive = bool((train_levels > 0).all() and (anchor > 0).all())
    moves = np.diff(np.log(train_levels)) if positive else np.diff(train_levels)
    spread = np.std(moves, ddof=1) * np.sqrt(np.arange(1, steps + 1))
    center = np.repeat(anchor[:, None], steps, axis=1)
    return {lv: _band(positive, center, -norm.ppf(0.5 + lv / 2) * spread, norm.ppf(0.5 + lv / 2) * spread)
            for lv in levels}  # fmt: skip


def pinball(y: np.ndarray, q: np.ndarray, tau: float) -> np.ndarray:
    """The pinball (quantile) loss of quantile forecast ``q`` at probability ``tau`` (Koenker & Bassett 1978):
    τ(y − q) where y ≥ q, (1 − τ)(q − y) otherwise."""
    diff = y - q
    return np.maximum(tau * diff, (tau - 1) * diff)


def score_intervals(
    actual: np.ndarray, bands: dict[float, tuple[np.ndarray, np.ndarray]], name: str, per_horizon: bool
) -> dict[str, float]:
    """Coverage, mean width and Winkler score per level (``{name}/coverage_80`` ...) and the pinball loss averaged
    over the bands' quantiles (``{name}/pinball``): over all targets ``actual`` (M, steps), or per horizon
    (``{name}/h{h}/…``) when ``per_horizon``."""
    out: dict[str, float] = {}
    columns = [(f"{name}/h{h + 1}", slice(h, h + 1)) for h in range(actual.shape[1])] if per_horizon else []
    columns = columns or [(name, slice(None))]
    for prefix, cols in columns:
        y, losses = actual[:, cols], []
        for level, (lower, upper) in bands.items():
            lo, hi, alpha, tag = lower[:, cols], upper[:, cols], 1 - level, f"{round(100 * level)}"
            out[f"{prefix}/coverage_{tag}"] = float(((y >= lo) & (y <= hi)).mean())
            out[f"{prefix}/width_{tag}"] = float((hi - lo).mean())
            penalty = (2 / alpha) * ((lo - y) * (y < lo) + (y - hi) * (y > hi))
            out[f"{prefix}/winkler_{tag}"] = float((hi - lo + penalty).mean())
            losses += [pinball(y, lo, alpha / 2).mean(), pinball(y, hi, 1 - alpha / 2).mean()]
        out[f"{prefix}/pinball"] = float(np.mean(losses))
    return out
