"""Honest scores in price units: the model beside naive, drift, moving-average and AR baselines on the same
targets, per horizon, with tests that hold their size on overlapping forecasts, intervals, and a trading check.
Pure numpy/scipy: no model, no files.

accuracy.py     point errors, skill, MASE, per horizon for every forecaster; the model's tests
significance.py Diebold-Mariano, information coefficient, Pesaran-Timmermann, HAC variances: sources cited
baselines.py    naive, drift, moving average, AR(p) on log returns fitted on the training period
intervals.py    conformal and adaptive conformal bands, their coverage, width and Winkler score
trading.py      a sign strategy after costs beside buy-and-hold: annualised return, Sharpe, drawdown
"""

from pricernn.evaluation.accuracy import score_forecasts, scores
from pricernn.evaluation.baselines import AutoRegression, baseline_forecasts
from pricernn.evaluation.significance import SIGNIFICANCE
from pricernn.evaluation.trading import trading_check

__all__ = [
    "SIGNIFICANCE",
    "AutoRegression",
    "baseline_forecasts",
    "score_forecasts",
    "scores",
    "trading_check",
]
