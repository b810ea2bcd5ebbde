"""Multi-step forecasts from a trained model: direct for a network's outputs, recursive beyond them, batched over
origins, per network (recursive, direct) so that pricernn.forecasting.combination can choose among them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from pricernn.data import PriceDataModule
from pricernn.data.derived import PathInputs, Recurrence, other_columns
from pricernn.errors import UserError, check
from pricernn.evaluation.intervals import Bands, Conformal, point_bases
from pricernn.forecasting.combination import Combination, fit_combination, fit_drift
from pricernn.models import RecurrentForecaster


def path_blockers(transform: dict) -> list[str]:
    """The inputs that keep a model from being fed its own forecasts: all but its target and the derived inputs of
    the target alone or of the date, which a forecast path extends (pricernn.data.derived.Recurrence). A model
    that reads Volume must not be fed its price forecasts as volume."""
    target, features, data = transform["target"], list(transform["features"]), transform.get("data")
    if data is None:  # a checkpoint that predates derived inputs: only its target may be fed back
        return [f for f in features if f != target]
    own = list(data.get("features") or [target])
    derived = features[len(own) : len(features) - len(data.get("covariates") or [])]
    covariates = features[len(own) + len(derived) :]
    return [
        *[f for f in own if f != target],
        *[f"{name} (from {', '.join(other_columns(name))})" for name in derived if other_columns(name)],
        *[f"the covariate {name}" for name in covariates],
    ]


def can_recurse(transform: dict) -> bool:
    """Whether a forecast can be fed back as the next input (:func:`path_blockers`)."""
    return not path_blockers(transform)


@torch.no_grad()
def recursive_forecast(
    model: RecurrentForecaster,
    inputs: torch.Tensor,
    last_price: torch.Tensor,
    steps: int,
    net: str | None = None,
    series: torch.Tensor | None = None,
    path: PathInputs | None = None,
) -> torch.Tensor:
    """Forecast ``steps`` prices after each window of ``inputs`` (B, W, F), in model units (prices or log
    returns, as at training); ``last_price`` (B,) is each window's last target price; ``series`` (B,) each
    window's series in the model's panel (for a symbol embedding); ``path`` what extends the windows' derived
    inputs (needed where recursion meets them).

    Network ``net`` (default: the model's primary one) predicts its outputs' steps at once; for more steps each
    forecast is appended to the window (the oldest rows drop out), with the derived inputs it implies computed
    as the history's were, and it runs again, as many times as needed. All origins advance together. Returns
    prices (B, steps).
    """
    check(steps >= 1, f"steps={steps} must be at least 1")
    net = net or model.primary
    horizon, transform = model.nets[net].outputs, model.hparams.transform
    blockers = path_blockers(transform)
    if steps > horizon and blockers:
        retrain = "evaluation.steps" if horizon > 1 else "model.strategy=direct evaluation.steps"
        raise UserError(
            f"steps={steps} needs recursion beyond the model's horizon ({horizon}), which feeds the model its own "
            f"forecasts of {transform['target']}; this one reads {', '.join(blockers)}, which it does not forecast: "
            f"give steps={horizon} or fewer, or train it with {retrain}={steps}"
        )
    # with no blockers, the inputs after the target are derived ones that each new bar's carry extends
    derived = list(transform["features"])[1:] if steps > horizon else []
    recurrence = Recurrence(derived) if derived else None
    check(recurrence is None or (path is not None and len(path.carry) == len(inputs)),
          "internal: a recursive forecast of derived inputs needs each window's carry")  # fmt: skip
    carry = path.carry if recurrence is not None else None
    normalizer, window, anchor = model.normalizer, inputs, last_price
    chunks: list[torch.Tensor] = []
    done = 0
    while done < steps:
        x, _, ctx = normalizer.normalize(window, window.new_zeros(len(window), horizon), anchor)
        prices = model.to_price(model(x, net, series), ctx)
        take = min(horizon, steps - done)
        new_prices = prices[:, :take]
        chunks.append(new_prices)
        done += take
        if done == steps:
            break
        if normalizer.log_return:  # the window holds log returns: append the returns of the new prices
            path_prices = torch.cat([anchor[:, None], new_prices], dim=1)
            appended = torch.log(path_prices[:, 1:] / path_prices[:, :-1])[..., None]
        else:
            appended = new_prices[..., None]
        if recurrence is not None:  # each new bar's derived inputs, from the bar before's carry and its price
            rows = []
            for j, price in enumerate(new_prices.T.double().cpu().numpy()):
                carry = recurrence.advance(carry, price)
                rows.append(recurrence.values(carry, path.dates[:, done - take + j]))
            extra = torch.as_tensor(np.stack(rows, axis=1), dtype=window.dtype, device=window.device)
            appended = torch.cat([appended, extra], dim=-1)
        window = torch.cat([window[:, take:], appended], dim=1)
        anchor = new_prices[:, -1]
    return torch.cat(chunks, dim=1)


def strategy_paths(
    model: RecurrentForecaster,
    inputs: torch.Tensor,
    last_price: torch.Tensor,
    steps: int,
    series: torch.Tensor | None = None,
    path: PathInputs | None = None,
) -> dict:
    """Every network's price paths (B, steps) from the same windows: ``{"recursive": ..., "direct": ...}`` for
    ``model.strategy=auto``, one entry otherwise (numpy, float64)."""
    return {
        name: recursive_forecast(model, inputs, last_price, steps, name, series, path).cpu().double().numpy()
        for name in model.nets
    }


def validation_errors(model: RecurrentForecaster, datamodule: PriceDataModule) -> pd.DataFrame:
    """The network's own next-step forecasts at every validation origin (no combination: the forecasts its early
    stopping judged), one row per origin: ``date`` (of the target), ``symbol`` (a panel's), ``last``, ``actual``,
    ``predicted`` in price units. What a sweep's runs are compared on (pricernn.reporting.leaderboard): losses on
    the same validation dates, never the test period's."""
    windows, _, targets = datamodule.forecast_origins("val", 1)
    anchor = torch.as_tensor(targets.anchor, dtype=torch.float32)
    predicted = recursive_forecast(model, windows, anchor, 1, None, torch.as_tensor(targets.series), targets.path)
    symbols = np.asarray(datamodule.series.symbols, dtype=object)[targets.series - datamodule.first_series]
    return pd.DataFrame(
        {
            "date": pd.DatetimeIndex(targets.target_dates[:, 0]),
            "symbol": symbols,
            "last": targets.anchor,
            "actual": targets.actual[:, 0],
            "predicted": predicted[:, 0].double().numpy(),
        }
    )


def scored_steps(model: RecurrentForecaster, steps: int) -> int:
    """How many horizons the report scores and validation combines: ``evaluation.steps`` (at least the model's
    outputs), or only the outputs of a model that cannot be fed its own forecasts."""
    horizon = int(model.hparams.horizon)
    return max(int(steps), horizon) if can_recurse(model.hparams.transform) else horizon


def one_step_moves(datamodule: PriceDataModule, split: str) -> tuple[np.ndarray, np.ndarray]:
    """The relative one-step moves of every window of ``split`` and their origin dates (none where a price is not
    positive: a spread has no relative moves, so no drift is fitted on it)."""
    targets = datamodule.targets(split)
    if not ((targets.anchor > 0).all() and (targets.actual[:, 0] > 0).all()):
        return np.zeros(0), np.zeros(0)
    return targets.actual[:, 0] / targets.anchor - 1.0, targets.origin_dates.values


# validation origins a series needs for intervals calibrated on its own residuals
MIN_CALIBRATION = 50


def quantile_pair(quantiles: tuple[float, ...], level: float) -> tuple[int, int]:
    """Indices of the learned quantiles (τ, 1 − τ) that make the widest band no wider than ``level`` (1 − 2τ ≤
    level), or the median's twice when no pair does."""
    median = quantiles.index(0.5)
    pairs = [(i, j) for i, lo in enumerate(quantiles) for j, hi in enumerate(quantiles)
             if lo < 0.5 and np.isclose(lo + hi, 1.0) and hi - lo <= level + 1e-9]  # fmt: skip
    return min(pairs, key=lambda p: quantiles[p[0]]) if pairs else (median, median)


@torch.no_grad()
def base_bands(
    model: RecurrentForecaster,
    inputs: torch.Tensor,
    last_price: torch.Tensor,
    forecast: np.ndarray,
    levels: tuple,
    series: torch.Tensor | None = None,
) -> Bands:
    """Per interval level, the band conformal calibration widens: the point ``forecast`` (M, steps) itself, or for
    a quantile model the learned quantiles of :func:`quantile_pair`, as offsets from the median added to the
    (combined) forecast, at the horizons its primary network outputs; beyond them the point forecast."""
    if not model.quantiles:
        return point_bases(forecast, levels)
    net = model.nets[model.primary]
    x, _, ctx = model.normalizer.normalize(inputs, inputs.new_zeros(len(inputs), net.outputs), last_price)
    q = net.quantiles(model.with_symbols(x, series))
    prices = torch.stack([model.to_price(q[..., k], ctx) for k in range(q.shape[-1])], dim=-1).double().numpy()
    offsets = prices - prices[..., net.median : net.median + 1]  # (M, outputs, quantiles)
    reach = min(forecast.shape[1], net.outputs)
    out = {}
    for level in levels:
        low, high = quantile_pair(model.quantiles, level)
        lower, upper = forecast.copy(), forecast.copy()
        lower[:, :reach] += offsets[:, :reach, low]
        upper[:, :reach] += offsets[:, :reach, high]
        out[level] = (lower, upper)
    return out


def validation_combination(
    model: RecurrentForecaster,
    datamodule: PriceDataModule,
    steps: int,
    shrink: bool,
    levels: tuple[float, ...] = (),
    drift: bool = False,
) -> tuple[Combination, list[Conformal] | None]:
    """Per horizon, the strategy, the network's drift removed and the weight toward the last price, and with
    ``drift`` the drift kept (pricernn.forecasting.combination), fitted on the training and validation origins of
    all series together (without ``shrink``, the network's raw forecasts), and per series the conformal
    calibration of the combined forecasts' intervals at ``levels`` (None without levels), fitted on that series'
    validation origins only (in a panel a calm stock's residuals do not set a volatile one's bands). The weights
    are fitted on the same residuals as the calibration: one number per horizon, a small optimism the test
    period's coverage shows."""
    windows, _, targets = datamodule.forecast_origins("val", steps)
    anchor, series = torch.as_tensor(targets.anchor, dtype=torch.float32), torch.as_tensor(targets.series)
    paths = strategy_paths(model, windows, anchor, steps, series, targets.path)
    kept = fit_drift(*one_step_moves(datamodule, "train"), *one_step_moves(datamodule, "val")) if drift else 0.0
    combination = fit_combination(paths, targets.actual, targets.anchor, shrink, targets.origin_dates.values, kept)
    if not levels:
        return combination, None
    combined = combination.apply(paths, targets.anchor)
    bases = base_bands(model, windows, anchor, combined, tuple(levels), series)
    pooled = Conformal.fit(targets.actual, bases)
    if datamodule.series.n_series == 1:
        return combination, [pooled]
    calibrations = []
    for k in range(datamodule.series.n_series):
        mine = targets.series == datamodule.first_series + k
        own = {level: (lower[mine], upper[mine]) for level, (lower, upper) in bases.items()}
        # a few residuals cannot set a 95 % band: a series with a short validation part takes the pooled one
        calibrations.append(Conformal.fit(targets.actual[mine], own) if mine.sum() >= MIN_CALIBRATION else pooled)
    return combination, calibrations
