"""Is a forecast's edge real? Tests that hold their size on overlapping multi-step forecasts.

h-step forecasts made every bar overlap: the errors (and the moves) of neighbouring origins share h-1 bars, so
they are autocorrelated even when nothing is predictable, and tests that assume independence reject far too often
(a binomial direction test rejects in ~43 % of pure random walks at h = 10). Every test here takes the overlap
into account. ``tests/evaluation/test_significance.py`` checks each against a hand-computed answer and simulates random
walks (with volatility clustering, and forecasts as persistent as a trend-follower's) to check that each rejects
at 5 % in at most ~7 % of them.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

SIGNIFICANCE = 0.05


def calls(predicted_moves: np.ndarray) -> np.ndarray:
    """The direction each forecast calls: +1 up, -1 down, 0 no call (a forecast of no move makes none).
    Every direction figure (accuracy, Pesaran-Timmermann, the trading check) counts calls the same way."""
    return np.sign(np.asarray(predicted_moves, dtype=float))


def moving(values: np.ndarray) -> bool:
    """Do ``values`` vary beyond rounding noise? (A model that always predicts +0.1 % has a std of 1e-17.)"""
    v = np.asarray(values, dtype=float)
    return bool(v.std() > 1e-9 * max(float(np.abs(v).mean()), 1e-300))


def newey_west_variance(x: np.ndarray, lags: int) -> float:
    """Long-run variance of ``x``: γ0 + 2 Σ_{k=1..L} (1 - k/(L+1)) γk, Bartlett weights (Newey & West 1987,
    "A simple, positive semi-definite, heteroskedasticity and autocorrelation consistent covariance matrix",
    Econometrica 55(3)). Autocovariances γk divide by n; the Bartlett weights keep the sum non-negative."""
    x = np.asarray(x, dtype=float)
    n = len(x)
    centred = x - x.mean()
    total = centred @ centred / n
    for k in range(1, min(int(lags), n - 1) + 1):
        total += 2 * (1 - k / (lags + 1)) * (centred[k:] @ centred[:-k]) / n
    return float(total)


def hac_lags(n: int) -> int:
    """Newey and West's (1994, "Automatic lag selection in covariance matrix estimation", RES 61(4)) rule of
    thumb for the lags of a Bartlett-kernel variance: floor(4 (n/100)^(2/9))."""
    return int(4 * (max(n, 1) / 100) ** (2 / 9))


def diebold_mariano(error_model: np.ndarray, error_reference: np.ndarray, horizon: int = 1) -> tuple[float, float]:
    """Diebold-Mariano test of equal squared-error loss (Diebold & Mariano 1995, "Comparing predictive accuracy",
    JBES 13(3)), with the small-sample correction of Harvey, Leybourne & Newbold (1997, "Testing the equality of
    prediction mean squared errors", IJF 13(2)).

    ``d_t = e_model² - e_reference²``; the long-run variance sums the autocovariances of ``d`` up to lag h-1
    (h-step errors overlap), the statistic is scaled by ``sqrt((T + 1 - 2h + h(h-1)/T) / T)`` and compared with
    Student's t with T-1 degrees of freedom. Returns (statistic, two-sided p-value); a negative statistic
    means the model's loss is lower. Identical losses give (nan, 1.0): there is nothing to test.
    """
    d = np.asarray(error_model, dtype=float) ** 2 - np.asarray(error_reference, dtype=float) ** 2
    return _mean_differential_test(d, int(horizon))


def panel_diebold_mariano(
    error_model: np.ndarray, error_reference: np.ndarray, dates: np.ndarray, horizon: int = 1
) -> tuple[float, float]:
    """Equal squared-error loss on average over the assets of a panel and over time: the overall
    equal-predictive-ability test of Akgun, Pirotte, Urga & Yang (2024, "Equal predictive ability tests based on
    panel data with applications to OECD and IMF forecasts", IJF 40(1)), its S-statistic on the cross-sectional
    mean loss differential of each date ``d̄_t = mean_i (e_model,it² - e_reference,it²)`` (over the assets with a
    forecast that date), tested as one time series as :func:`diebold_mariano` does. Averaging within a date first
    makes it valid whatever the dependence between assets on the same day, which a test on the rows of all
    assets stacked would ignore (and reject too often: stocks fall together). Returns (statistic, p-value)."""
    d = np.asarray(error_model, dtype=float) ** 2 - np.asarray(error_reference, dtype=float) ** 2
    _, day = np.unique(np.asarray(dates), return_inverse=True)
    mean = np.bincount(day, weights=d) / np.bincount(day)
    return _mean_differential_test(mean, int(horizon))


def loss_difference_test(d: np.ndarray, horizon: int = 1) -> tuple[float, float]:
    """Diebold-Mariano's test that the mean of a loss differential ``d`` (one value per date: model a's loss
    minus model b's, squared errors or any other) is 0, as :func:`diebold_mariano` tests squared errors."""
    return _mean_differential_test(np.asarray(d, dtype=float), int(horizon))


def _mean_differential_test(d: np.ndarray, h: int) -> tuple[float, float]:
    """Diebold-Mariano's statistic with Harvey-Leybourne-Newbold's correction for the mean of the loss
    differential ``d`` (one value per forecast date, h-step errors overlapping)."""
    n = len(d)
    centred = d - d.mean()
    gammas = [centred[k:] @ centred[: n - k] / n for k in range(min(h, n))]
    variance = gammas[0] + 2 * sum(gammas[1:])
    if variance <= 0:  # the Bartlett-free sum can go negative for long horizons: keep the lag-0 term only
        variance = gammas[0]
    if variance <= 0 or n < 2:
        return float("nan"), 1.0
    dm = d.mean() / np.sqrt(variance / n)
    statistic = dm * np.sqrt((n + 1 - 2 * h + h * (h - 1) / n) / n)
    return float(statistic), float(2 * stats.t.sf(abs(statistic), df=n - 1))


def reverse_regression_test(next_bar: np.ndarray, signal: np.ndarray, horizon: int = 1) -> tuple[float, float]:
    """Does ``signal`` (one value per consecutive origin) predict the moves of the h bars after it? One-sided
    t-test of a positive slope, valid with overlapping horizons and persistent signals.

    Regressing h-bar moves on the signal makes the dependent variable overlap. Hodrick's (1992, "Dividend yields
    and expected stock returns: alternative procedures for inference and measurement", RFS 5(3)) reverse
    regression tests the same null without overlap: the sum over origins of signal x h-bar move equals the sum of
    the next bar's move x the signal summed over the last h origins, so the one-bar move ``next_bar[t]`` (from
    origin t to t+1) is regressed on ``x_t + ... + x_{t-h+1}``. Under no predictability the one-bar moves are a
    martingale difference, so a heteroskedasticity-robust (White 1980, Econometrica 48(4)) variance suffices.
    Constant inputs: (nan, 1.0)."""
    h = int(horizon)
    summed = np.convolve(np.asarray(signal, dtype=float), np.ones(h))[: len(signal)][h - 1 :]
    y = np.asarray(next_bar, dtype=float)[h - 1 :]
    xc, yc = summed - summed.mean(), y - y.mean()
    sxx = xc @ xc
    if len(y) < 3 or sxx <= 0 or np.ptp(y) == 0:
        return float("nan"), 1.0
    slope = (xc @ yc) / sxx
    variance = float(((xc * (yc - slope * xc)) ** 2).sum()) / sxx**2
    if variance <= 0:
        return float("nan"), 1.0
    statistic = slope / np.sqrt(variance)
    return float(statistic), float(stats.norm.sf(statistic))


def information_coefficient(
    predicted_moves: np.ndarray, actual_moves: np.ndarray, next_bar: np.ndarray, horizon: int = 1
) -> dict:
    """The information coefficient of h-step forecasts from consecutive origins: Pearson (``ic``) and Spearman
    (``ic_spearman``) correlation between the predicted and the realised move (log returns from the origin), the
    one-sided p-value that the predicted moves carry information (``ic_pvalue``, :func:`reverse_regression_test`
    with ``next_bar``, each origin's one-bar log return) and ``move_ratio``, the std of predicted over realised
    moves (near 0: a model that barely moves off the last price)."""
    pred, act = np.asarray(predicted_moves, dtype=float), np.asarray(actual_moves, dtype=float)
    both = moving(pred) and moving(act)
    ic = float(np.corrcoef(pred, act)[0, 1]) if both else float("nan")
    spearman = float(stats.spearmanr(pred, act).statistic) if both else float("nan")
    _, pvalue = reverse_regression_test(next_bar, pred, horizon) if both else (float("nan"), 1.0)
    ratio = float(pred.std() / act.std()) if act.std() > 0 else float("nan")
    return {"ic": ic, "ic_spearman": spearman, "ic_pvalue": pvalue, "move_ratio": ratio}


def pesaran_timmermann(predicted_moves: np.ndarray, actual_moves: np.ndarray) -> tuple[float, float]:
    """Pesaran & Timmermann (1992, "A simple nonparametric test of predictive performance", JBES 10(4)):
    is the share of correctly predicted directions P above what independent directions would give,
    P* = Py Px + (1 - Py)(1 - Px)? S = (P - P*) / sqrt(var(P) - var(P*)) ~ N(0, 1) with
    var(P) = P*(1 - P*)/n and var(P*) = (2Py-1)² Px(1-Px)/n + (2Px-1)² Py(1-Py)/n + 4 Py Px (1-Py)(1-Px)/n².
    Forecasts that call no direction (no move) are left out. Returns S and its one-sided p-value; directions that
    never change give (nan, 1.0)."""
    called = calls(predicted_moves) != 0
    up_pred, up_act = calls(predicted_moves)[called] > 0, np.asarray(actual_moves)[called] > 0
    n = len(up_act)
    p_hit = float(np.mean(up_pred == up_act))
    py, px = float(up_act.mean()), float(up_pred.mean())
    p_star = py * px + (1 - py) * (1 - px)
    var_p = p_star * (1 - p_star) / n
    var_star = (
        (2 * py - 1) ** 2 * px * (1 - px) / n
        + (2 * px - 1) ** 2 * py * (1 - py) / n
        + 4 * py * px * (1 - py) * (1 - px) / n**2
    )
    if n < 2 or var_p - var_star <= 0:
        return float("nan"), 1.0
    statistic = (p_hit - p_star) / np.sqrt(var_p - var_star)
    return float(statistic), float(stats.norm.sf(statistic))


def direction_test(
    predicted_moves: np.ndarray, actual_moves: np.ndarray, next_bar: np.ndarray, horizon: int = 1
) -> tuple[float, float]:
    """Do the forecasts call directions better than chance? One-sided. For one-step forecasts this is
    Pesaran-Timmermann (1992). The direction of an overlapping h-bar move has no overlap-free decomposition, so
    for h > 1 it asks the question Hodrick's reverse regression can answer without overlap: do the last h
    direction calls (+1/-1, 0 for none) predict whether the next single bar goes up (:func:`reverse_regression_test`)?
    Under no predictability both hold their size (``tests/evaluation/test_significance.py``); the h > 1 version is not
    Pesaran-Timmermann's statistic, which is why its keys are ``dir_*``, not ``pt_*``."""
    if int(horizon) == 1:
        return pesaran_timmermann(predicted_moves, actual_moves)
    up_next = (np.asarray(next_bar) > 0).astype(float)
    return reverse_regression_test(up_next, calls(predicted_moves), horizon)


def mean_return_test(returns: np.ndarray) -> tuple[float, float]:
    """Is a strategy's mean return per bar different from zero? Newey-West t-test (two-sided, normal reference)
    with :func:`hac_lags` lags: the test of a Sharpe ratio against zero that allows for autocorrelated and
    heteroskedastic returns (Lo 2002, "The statistics of Sharpe ratios", FAJ 58(4), on why the iid formula
    misleads)."""
    r = np.asarray(returns, dtype=float)
    if len(r) < 3 or r.std() == 0:
        return float("nan"), 1.0
    variance = newey_west_variance(r, hac_lags(len(r))) / len(r)
    if variance <= 0:
        return float("nan"), 1.0
    statistic = r.mean() / np.sqrt(variance)
    return float(statistic), float(2 * stats.norm.sf(abs(statistic)))


def benjamini_hochberg(pvalues: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (Benjamini & Hochberg 1995, "Controlling the false discovery rate",
    JRSS B 57(1)): ``p_(i) m / i`` for the i-th smallest of m, made monotone from the largest down and capped at 1.
    Rejecting where the adjusted value is below q keeps the expected share of false claims among all claims at
    most q (for independent or positively dependent tests, as assets' are). NaN stays NaN and is not counted."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    finite = np.flatnonzero(np.isfinite(p))
    order = finite[np.argsort(p[finite])]
    m = len(order)
    if m:
        scaled = p[order] * m / np.arange(1, m + 1)
        out[order] = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
    return out
