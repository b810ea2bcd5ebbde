"""Prediction intervals around price forecasts and how to score them.

- :class:`Conformal`: split conformal prediction (Vovk, Gammerman & Shafer 2005; Lei et al. 2018, "Distribution-
  free predictive inference for regression", JASA 113) per horizon, from the validation period's residuals on the
  scale the model works in: log(actual / forecast) for positive prices, price differences otherwise; around a
  quantile model's band it is conformalized quantile regression (Romano, Patterson & Candès 2019).
- :meth:`Conformal.adaptive_bands`: adaptive conformal inference (Gibbs & Candès 2021, "Adaptive conformal
  inference under distribution shift", NeurIPS), which moves each level's miscoverage rate as test targets are revealed.
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


Bands = dict[float, tuple[np.ndarray, np.ndarray]]  # level -> (lower, upper), each (M, steps), in prices


def _score(positive: bool, actual: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """How far ``actual`` lies outside the base band [lower, upper] (negative inside), on the model's scale: log
    ratios for positive prices, else price differences (Romano, Patterson & Candès 2019, "Conformalized quantile
    regression", NeurIPS, eq. 6). For a point forecast (lower = upper) it is the absolute residual."""
    if positive:
        return np.maximum(np.log(lower / actual), np.log(actual / upper))
    return np.maximum(lower - actual, actual - upper)


def _widen(positive: bool, lower: np.ndarray, upper: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The base band widened by ``q`` on the model's scale (narrowed where q < 0)."""
    if positive:
        return lower * np.exp(-q), upper * np.exp(q)
    return lower - q, upper + q


def conformal_quantile(scores: np.ndarray, alpha: float) -> float:
    """The split-conformal quantile of ``scores`` (n,) for miscoverage ``alpha``: the ⌈(n+1)(1−α)⌉-th smallest
    score (Lei et al. 2018, section 2.2), so that a new exchangeable score lies at or below it with probability
    ≥ 1 − α. With too few scores for that rank the largest one is used (the exact rule would give an infinite
    band)."""
    n = len(scores)
    rank = min(int(np.ceil((n + 1) * (1 - alpha))), n)
    return float(np.sort(scores)[rank - 1])


def point_bases(forecast: np.ndarray, levels: tuple[float, ...]) -> Bands:
    """Zero-width base bands at the point forecast: plain split conformal around it."""
    return {level: (forecast, forecast) for level in levels}


@dataclass(frozen=True)
class Conformal:
    """Per level, the validation period's conformity scores per horizon, sorted (n, steps): how far each target
    lay outside its base band (the point forecast, or a quantile model's band: CQR). Split-conformal bands widen
    the base by the scores' conformal quantile; adaptive conformal inference starts from the same scores.
    ``positive``: scores are log ratios, else price differences."""

    scores: dict[float, np.ndarray]
    positive: bool

    @property
    def levels(self) -> tuple[float, ...]:
        return tuple(self.scores)

    @classmethod
    def fit(cls, actual: np.ndarray, bases: Bands) -> Conformal:
        """Calibrate on validation targets ``actual`` (M, steps) and each level's base band of them."""
        positive = bool((actual > 0).all() and all((lo > 0).all() and (hi > 0).all() for lo, hi in bases.values()))
        scores = {lv: np.sort(_score(positive, actual, lo, hi), axis=0) for lv, (lo, hi) in bases.items()}
        return cls(scores, positive)

    def half_width(self, level: float) -> np.ndarray:
        """Per horizon, the conformal quantile of the level's scores, on the model's scale (steps,)."""
        scores = self.scores[level]
        return np.array([conformal_quantile(scores[:, h], 1 - level) for h in range(scores.shape[1])])

    def bands(self, bases: Bands) -> Bands:
        """Price bands per level: each base band (M, steps) widened by its split-conformal quantile."""
        out = {}
        for level, (lower, upper) in bases.items():
            out[level] = _widen(self.positive, lower, upper, self.half_width(level)[: lower.shape[1]])
        return out

    def adaptive_bands(self, actual: np.ndarray, bases: Bands, gamma: float) -> tuple[Bands, dict]:
        """Adaptive conformal inference (Gibbs & Candès 2021, eq. 2) over test origins in time order: per level
        and horizon h the miscoverage rate follows α_{t+1} = α_t + γ(α − err_t), err_t = 1 when a target fell
        outside its band. The target of origin t at horizon h is known only at t + h, so origin t's rate uses the
        errors of origins up to t − h. The widening is the (1 − α_t) conformal quantile of the validation scores;
        where α_t ≤ 0 the paper's set is the whole line, which covers (err_t = 0, so α_t stays above −γ); its
        band here is the largest score, so bands stay finite; where α_t ≥ 1 the paper's set is empty (err_t = 1).
        Returns the bands per level and, per level, the widenings (steps,) reached at the last origin: the state
        to go on from."""
        out, final = {}, {}
        for level, (lower, upper) in bases.items():
            scores, test_scores = self.scores[level], _score(self.positive, actual, lower, upper)
            n, (m, steps) = len(scores), lower.shape
            alpha, half, rates = 1 - level, np.empty((m, steps)), np.empty((m, steps))
            for h in range(steps):
                rate = alpha
                for t in range(m):
                    if t > h:  # origin t − h − 1's target at horizon h + 1 is known at origin t
                        s = t - h - 1
                        missed = rates[s, h] >= 1 or (rates[s, h] > 0 and test_scores[s, h] > half[s, h])
                        rate += gamma * (alpha - float(missed))
                    rank = min(max(int(np.ceil((n + 1) * (1 - rate))), 1), n)
                    rates[t, h], half[t, h] = rate, scores[rank - 1, h]
            out[level], final[level] = _widen(self.positive, lower, upper, half), half[-1]
        return out, final

    def to_dict(self, half_widths: dict[float, np.ndarray] | None = None) -> dict:
        """Plain data for a checkpoint: the scale and each level's widening per horizon, the split-conformal
        ones unless ``half_widths`` (adaptive conformal's last state) are given."""
        widths = half_widths or {level: self.half_width(level) for level in self.levels}
        # forecasts get bands that widen with the horizon and nest by level; adaptive widths, each horizon's
        # tracked on its own, need not, so the smallest widths that do are kept
        stored, floor = {}, -np.inf
        for level in sorted(widths):
            floor = np.maximum(np.maximum.accumulate(np.asarray(widths[level], dtype=float)), floor)
            stored[str(level)] = floor.tolist()
        return {"positive": self.positive, "half_widths": stored}


def bands_from_checkpoint(state: dict, bases: Bands) -> Bands:
    """The bands a checkpoint's calibration (:meth:`Conformal.to_dict`, or :func:`panel_state`'s rows) gives the
    base bands ``bases``; beyond the
    horizons calibrated at training, the last calibrated band's distances from its forecast, grown with √h (a
    random walk's rate), around the (point) forecast. None where the calibration is on log ratios and a base is not
    positive (said once): it does not apply there."""
    positive = bool(state["positive"])
    if positive and not all((lo > 0).all() and (hi > 0).all() for lo, hi in bases.values()):
        log.warning("no intervals: the calibration is on log ratios of positive prices, and this forecast is not")
        return {}
    out, calibrated = {}, 0
    for level, (lower, upper) in bases.items():
        q = np.asarray(state["half_widths"][str(level)], dtype=float)  # (H,), or (M, H): a row per forecast
        calibrated = min(q.shape[-1], lower.shape[1])
        low, high = _widen(positive, lower[:, :calibrated], upper[:, :calibrated], q[..., :calibrated])
        extra = lower.shape[1] - calibrated
        if extra > 0:  # lower == upper there: the point forecast; the last calibrated base's middle is its like
            center, edges = (
                lower[:, calibrated:],
                (lower[:, calibrated - 1 : calibrated], upper[:, calibrated - 1 :][:, :1]),
            )
            last = np.sqrt(edges[0] * edges[1]) if positive else (edges[0] + edges[1]) / 2
            grow = np.sqrt(np.arange(calibrated + 1, calibrated + extra + 1) / calibrated)
            if positive:
                down, up = np.log(last / low[:, -1:]), np.log(high[:, -1:] / last)
                low, high = (
                    np.hstack([low, center * np.exp(-down * grow)]),
                    np.hstack([high, center * np.exp(up * grow)]),
                )
            else:
                down, up = last - low[:, -1:], high[:, -1:] - last
                low, high = np.hstack([low, center - down * grow]), np.hstack([high, center + up * grow])
        out[level] = (low, high)
    if bases and next(iter(bases.values()))[0].shape[1] > calibrated:
        log.warning("intervals beyond step %d (the horizons calibrated at training) grow with √h from its band",
                    calibrated)  # fmt: skip
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
    return {lv: _widen(positive, center, center, norm.ppf(0.5 + lv / 2) * spread) for lv in levels}


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


def panel_state(state: dict, symbols: tuple[str, ...]) -> dict:
    """A panel checkpoint's calibrations (``{"symbols": {symbol: state}}``, each series' own) as one state with a
    row of half-widths per series of ``symbols``, for :func:`bands_from_checkpoint`. A series the model was not
    calibrated on takes the median of the others' widths, with a warning naming it. A single series' state is
    returned as it is."""
    if "symbols" not in state:
        return state
    known = state["symbols"]
    first = next(iter(known.values()))
    median = {lv: np.median([s["half_widths"][lv] for s in known.values()], axis=0) for lv in first["half_widths"]}
    missing = [s for s in symbols if s not in known]
    if missing:
        log.warning("intervals of %s: not calibrated at training (not in its panel), so the median of the other "
                    "assets' widths", ", ".join(missing))  # fmt: skip
    rows = {lv: [known[s]["half_widths"][lv] if s in known else median[lv] for s in symbols] for lv in median}
    return {"positive": first["positive"], "half_widths": rows}
