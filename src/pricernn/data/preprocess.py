"""From a loaded price frame to model-ready arrays: fill gaps, encode the target, split by time.

Nothing here is fitted on data: filling is causal by default (``ffill``), and the split only decides row
boundaries. The one fitted step, normalisation, lives in :mod:`pricernn.data.transforms`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pricernn.errors import UserError

log = logging.getLogger("pricernn")


def fill_missing(prices: pd.DataFrame, method: str = "ffill") -> pd.DataFrame:
    """Fill or drop missing values, reporting how many per column.

    ``ffill`` carries the last known price forward (causal: never uses a later value). ``interpolate`` draws a
    straight line in time between neighbours, so a filled day looks one observation ahead. ``drop`` removes
    rows with any gap. Rows still empty at the start (nothing to carry forward) are dropped.
    """
    missing = prices.isna().sum()
    if missing.any():
        detail = ", ".join(f"{c}: {n}" for c, n in missing.items() if n)
        log.info("missing values (%s) handled by data.fill=%s", detail, method)
    if method == "ffill":
        prices = prices.ffill()
    elif method == "interpolate":
        prices = prices.interpolate(method="time", limit_area="inside").ffill()
    leading = prices.isna().any(axis=1)
    if leading.any():
        log.info("dropped %d rows with no value to fill from", int(leading.sum()))
        prices = prices[~leading]
    return prices


def require_positive(prices: pd.DataFrame, columns: Sequence[str], why: str) -> None:
    """Fail on the first value <= 0 in ``columns``, naming the column, date and the option that needs it."""
    for column in columns:
        bad = prices[column].to_numpy() <= 0
        if bad.any():
            day = prices.index[int(np.argmax(bad))].date()
            value = prices[column].iloc[int(np.argmax(bad))]
            raise UserError(f"column {column!r} has the non-positive value {value:g} on {day}; {why}")


@dataclass(frozen=True)
class PreparedSeries:
    """Encoded, aligned arrays of one series, or of several end to end (a panel: pricernn.data.panel). Row t of
    every array refers to ``dates[t]``; series k owns rows ``offsets[k]`` to ``offsets[k + 1] - 1``."""

    dates: pd.DatetimeIndex
    inputs: np.ndarray  # (N, F) encoded input features
    target: np.ndarray  # (N,) encoded target (price, or log return into day t)
    levels: np.ndarray  # (N,) target price on day t: anchors and actuals in price units
    features: tuple[str, ...]
    target_name: str
    log_return: bool
    symbols: tuple[str, ...] = ("",)  # one name per series ("" for a single unnamed one)
    offsets: np.ndarray | None = None  # (S + 1,) first row of each series, then N; None: one series
    kinds: tuple[str, ...] = ()  # per input: price | standard | bounded (pricernn.data.derived); () = all price
    bounds: tuple[tuple[float, float], ...] = ()  # per input: a bounded input's range
    # (N, C) per row: what the next row's derived inputs follow from (pricernn.data.derived.Recurrence)
    carry: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.offsets is None:
            object.__setattr__(self, "offsets", np.array([0, len(self.dates)]))
        if self.carry is None:
            object.__setattr__(self, "carry", np.empty((len(self.dates), 0)))

    @property
    def n_series(self) -> int:
        return len(self.symbols)

    def part(self, k: int) -> PreparedSeries:
        """Series ``k`` alone (views of the arrays, nothing copied)."""
        rows = slice(int(self.offsets[k]), int(self.offsets[k + 1]))
        return PreparedSeries(
            self.dates[rows],
            self.inputs[rows],
            self.target[rows],
            self.levels[rows],
            self.features,
            self.target_name,
            self.log_return,
            (self.symbols[k],),
            kinds=self.kinds,
            bounds=self.bounds,
            carry=self.carry[rows],
        )


def encode(
    prices: pd.DataFrame,
    features: Sequence[str],
    target: str,
    target_transform: str,
    kinds: Sequence[str] = (),
    bounds: Sequence[tuple[float, float]] = (),
    carry: np.ndarray | None = None,
) -> PreparedSeries:
    """Encode prices as model values: the prices themselves, or daily log returns (first day dropped). Only the
    price-like inputs (``kinds``, per feature: price | standard | bounded; () = all price) become log returns;
    derived inputs are already returns, oscillators or dates. ``carry`` (rows, C) travels with the rows."""
    log_return = target_transform == "log_return"
    every = tuple(kinds) or ("price",) * len(features)
    inputs = prices[list(features)].to_numpy(dtype=np.float64)
    levels = prices[target].to_numpy(dtype=np.float64)
    encoded_target = levels
    dates = prices.index
    if log_return:
        prices_in = [f for f, kind in zip(features, every, strict=True) if kind == "price"]
        require_positive(prices, list(dict.fromkeys([target, *prices_in])),
                         "data.target_transform=log_return needs prices > 0")  # fmt: skip
        is_price = np.array([kind == "price" for kind in every])
        inputs = np.where(is_price, np.diff(np.log(np.where(is_price, inputs, 1.0)), axis=0, prepend=np.nan), inputs)
        encoded_target = np.diff(np.log(levels))
        inputs, levels, dates = inputs[1:], levels[1:], dates[1:]
        carry = None if carry is None else carry[1:]
    return PreparedSeries(
        dates=dates,
        inputs=np.ascontiguousarray(inputs),
        target=np.ascontiguousarray(encoded_target),
        levels=levels,
        features=tuple(features),
        target_name=target,
        log_return=log_return,
        kinds=tuple(kinds),
        bounds=tuple(bounds),
        carry=carry,
    )


def _fraction_rows(n: int, fractions: Sequence[float]) -> tuple[int, int]:
    n_train = int(round(fractions[0] * n))
    n_val = int(round(fractions[1] * n))
    return n_train, n_train + n_val


def _min_rows(fractions: Sequence[float], window: int, horizon: int) -> int:
    rows = window + 3 * horizon
    while True:  # ends: every part grows with the row count
        val_row, test_row = _fraction_rows(rows, fractions)
        if val_row >= window + horizon and min(test_row - val_row, rows - test_row) >= horizon:
            return rows
        rows += 1


def split_rows(
    dates: pd.DatetimeIndex,
    window: int,
    horizon: int,
    fractions: Sequence[float] = (0.7, 0.15, 0.15),
    val_start: str | None = None,
    test_start: str | None = None,
) -> tuple[int, int]:
    """First row of the validation and of the test period (chronological; nothing is shuffled).

    By fractions of the rows, or by dates when ``val_start`` and ``test_start`` are given. The training part
    must hold at least one whole window plus its horizon; validation and test at least one horizon each.
    """
    n = len(dates)  # the options themselves (fractions, date order) are checked by pricernn.config.validate
    if val_start is not None:
        val_row = int(dates.searchsorted(pd.Timestamp(val_start)))
        test_row = int(dates.searchsorted(pd.Timestamp(test_start)))
        how = f"data.val_start={val_start}, data.test_start={test_start}"
    else:
        fractions = [float(f) for f in fractions]
        val_row, test_row = _fraction_rows(n, fractions)
        how = f"data.split={fractions}"
    parts = {"train": val_row, "validation": test_row - val_row, "test": n - test_row}
    needed = {"train": window + horizon, "validation": horizon, "test": horizon}
    short = [p for p in parts if parts[p] < needed[p]]
    if short:
        hint = ""
        if val_start is None:
            hint = f"; with this split it needs at least {_min_rows(fractions, window, horizon)} rows"
        raise UserError(
            f"the series has {n} rows, too short for data.window={window} + data.horizon={horizon} with {how}: "
            f"the {short[0]} part gets {parts[short[0]]} rows and needs {needed[short[0]]}{hint}"
        )
    return val_row, test_row


def window_starts(n: int, window: int, horizon: int, val_row: int, test_row: int) -> dict[str, np.ndarray]:
    """Start rows of the windows of each split. A window starting at i reads rows i..i+W-1 and predicts rows
    i+W..i+W+H-1; every one of its targets lies inside its split, so no target crosses a boundary."""
    last_start = {"train": val_row - window - horizon, "val": test_row - window - horizon, "test": n - window - horizon}
    first_start = {"train": 0, "val": val_row - window, "test": test_row - window}
    return {k: np.arange(first_start[k], last_start[k] + 1) for k in first_start}
