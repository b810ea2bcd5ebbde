"""Inputs derived from the price history by name (``data.derived=[log_return, volatility_20, rsi_14, ...]``), each
computed from rows up to its own row only: trailing windows and causal smoothing, never a centred window or a fill
from a later row. Every input's value at row t is unchanged when any row after t changes (``tests/data/test_derived.py``
checks it for each one).

Formulas are their textbook definitions, and on every row they agree with TA-Lib, the field's reference, which the
tests use as their oracle: RSI and ATR with Wilder's smoothing (an exponential average with α = 1/n seeded with the
mean of the first n values), MACD from exponential averages seeded the same way, Bollinger bands with the
population deviation. pricernn computes them itself rather than calling TA-Lib because TA-Lib computes a whole
array at once, and a forecast path must extend an indicator one bar at a time. The inputs of the target alone are
written as one recurrence over rows (:class:`Recurrence`): the file's rows and a recursive forecast's path are
computed by the same code, so a path's inputs are those the history would have had.

Each input has a *kind*, which says how it is scaled (pricernn.data.transforms): ``standard`` (standardised with
training-period statistics: returns, volatility, oscillators in units of the price) or ``bounded`` (a fixed range
mapped to [-1, 1]: RSI, day of week, month).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from pricernn.errors import UserError, check

# Raised whenever a derived input's formula changes: a checkpoint's model learnt the inputs of its version, so one
# of another version is refused (pricernn.checkpoints). 2: Wilder's seeds, TA-Lib's MACD and Bollinger deviation,
# derived inputs left as they are under data.target_transform=log_return.
VERSION = 2


@dataclass(frozen=True)
class Average:
    """An exponential average carried from row to row, y_t = (1 - α) y_{t-1} + α x_t, seeded with the mean of its
    first ``n`` values after ``skip`` (Wilder's seed, and TA-Lib's) and undefined before; ``source`` gives x_t from
    the last prices (M, lags), oldest first."""

    alpha: float
    source: Callable[[np.ndarray], np.ndarray]
    n: int
    skip: int = 0


def _seeded_average(x: np.ndarray, alpha: float, n: int, skip: int = 0) -> np.ndarray:
    """The exponential average of ``x`` (α) over rows, seeded with the mean of its n defined values after the
    first ``skip`` (NaN before): Wilder (1978) for RSI and ATR, and TA-Lib's EMA seed."""
    defined = np.flatnonzero(~np.isnan(x))
    out = np.full(len(x), np.nan)
    if len(defined) < skip + n:
        return out
    first = defined[skip]
    start = first + n - 1
    seeded = np.r_[np.full(start, np.nan), np.mean(x[first : start + 1]), x[start + 1 :]]
    out[start:] = pd.Series(seeded).ewm(alpha=alpha, adjust=False).mean().to_numpy()[start:]
    return out


@dataclass(frozen=True)
class Derived:
    """One derived input: its kind (how it is scaled), a bounded one's range, and how it is computed. An input of
    the target price alone is written as a recurrence, so that a forecast path extends it exactly as the file's
    rows were: ``value`` of the last ``lags`` prices (M, lags), oldest first, and of its ``averages`` (M, A). A
    calendar input is a function of the row's date; any other reads the file's columns ``needs`` (``compute``)."""

    kind: str  # "standard" | "bounded"
    bounds: tuple[float, float] = (0.0, 1.0)
    lags: int = 0
    averages: tuple[Average, ...] = ()
    value: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None
    calendar: Callable[[pd.DatetimeIndex], np.ndarray] | None = None
    compute: Callable[[pd.Series, pd.DataFrame], pd.Series] | None = None
    needs: tuple[str, ...] = ()  # other columns of the file it reads (High, Low, Volume)


def _gain(last: np.ndarray) -> np.ndarray:
    return np.maximum(last[:, -1] - last[:, -2], 0.0)


def _loss(last: np.ndarray) -> np.ndarray:
    return np.maximum(last[:, -2] - last[:, -1], 0.0)


def _price(last: np.ndarray) -> np.ndarray:
    return last[:, -1]


def _where_defined(spread: np.ndarray, value: np.ndarray, flat: float) -> np.ndarray:
    """``value`` where ``spread`` > 0, ``flat`` where it is 0 (or rounding away from it), NaN where undefined."""
    return np.where(np.isnan(spread), np.nan, np.where(spread > 1e-12, value, flat))


def _log_return(last: np.ndarray, averages: np.ndarray) -> np.ndarray:
    return np.log(last[:, -1] / last[:, -2])


def _volatility(last: np.ndarray, averages: np.ndarray) -> np.ndarray:
    """The sample standard deviation of the last n log returns (n + 1 prices)."""
    return np.diff(np.log(last), axis=1).std(axis=1, ddof=1)


def _rsi(last: np.ndarray, averages: np.ndarray) -> np.ndarray:
    """Wilder's relative strength index, 100 - 100 / (1 + average gain / average loss), both averaged by Wilder's
    smoothing (α = 1/n) of the one-bar changes; only gains: 100; no change at all: 50."""
    gain, loss = averages[:, 0], averages[:, 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        rsi = 100 - 100 / (1 + gain / loss)
    return np.where(np.isnan(gain + loss), np.nan, np.where(loss > 0, rsi, np.where(gain > 0, 100.0, 50.0)))


def _macd(last: np.ndarray, averages: np.ndarray) -> np.ndarray:
    """The MACD line (12-bar EMA minus 26-bar EMA) as a fraction of the price (the percentage price oscillator),
    so that it compares across price levels and assets."""
    return (averages[:, 0] - averages[:, 1]) / last[:, -1]


def _bollinger(last: np.ndarray, averages: np.ndarray) -> np.ndarray:
    """Where the price lies in its Bollinger band: (p - n-bar mean) / (2 n-bar standard deviations), the deviation
    over the n bars themselves (population), as Bollinger (2001, *Bollinger on Bollinger Bands*) and TA-Lib define
    the band; a flat band: at its middle."""
    mean, std = last.mean(axis=1), last.std(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return _where_defined(std / np.abs(mean), (last[:, -1] - mean) / (2 * std), 0.0)


def _atr(frame: pd.DataFrame, p: pd.Series, n: int) -> pd.Series:
    """Wilder's average true range over n bars, as a fraction of the price."""
    high, low, close_before = frame["High"], frame["Low"], p.shift(1)
    true_range = pd.concat([high - low, (high - close_before).abs(), (low - close_before).abs()], axis=1).max(axis=1)
    true_range[close_before.isna()] = np.nan
    return _seeded_average(true_range.to_numpy(dtype=float), 1 / n, n) / p


def _volume_z(frame: pd.DataFrame, n: int) -> pd.Series:
    """Today's log volume in standard deviations from its mean over the n bars before today."""
    volume = np.log1p(frame["Volume"].clip(lower=0))
    before = volume.shift(1).rolling(n)
    spread = before.std()
    return ((volume - before.mean()) / spread.where(spread > 0)).mask(spread == 0, 0.0)


def _find(name: str) -> Derived:
    """The derived input a name stands for; a number at its end is its length (``volatility_20``)."""
    match = re.fullmatch(r"([a-z_]+?)(?:_(\d+))?", name)
    base, n = (match[1], int(match[2])) if match and match[2] else (name, None)
    length = {"volatility": 20, "rsi": 14, "bollinger": 20, "atr": 14, "volume_z": 20}
    if base in length and (n or length[base]) < 2:
        raise UserError(f"data.derived: {name} needs a length of at least 2")
    k = n or length.get(base, 1)  # (1: a length the input does not read)
    table = {
        "log_return": Derived("standard", lags=2, value=_log_return),
        "volatility": Derived("standard", lags=k + 1, value=_volatility),
        "rsi": Derived("bounded", (0.0, 100.0), lags=2, averages=(Average(1 / k, _gain, k),
                                                                  Average(1 / k, _loss, k)), value=_rsi),
        # the fast average seeded on the slow one's last 12 seed prices, so both start together (TA-Lib's MACD)
        "macd": Derived("standard", lags=1, averages=(Average(2 / 13, _price, 12, skip=14),
                                                      Average(2 / 27, _price, 26)), value=_macd),
        "bollinger": Derived("standard", lags=k, value=_bollinger),
        "atr": Derived("standard", compute=lambda p, f: _atr(f, p, k), needs=("High", "Low")),
        "volume_z": Derived("standard", compute=lambda p, f: _volume_z(f, k), needs=("Volume",)),
        "range": Derived("standard", compute=lambda p, f: (f["High"] - f["Low"]) / p, needs=("High", "Low")),
        "day_of_week": Derived("bounded", (0.0, 6.0), calendar=lambda d: np.asarray(d.day_of_week, dtype=float)),
        "month": Derived("bounded", (1.0, 12.0), calendar=lambda d: np.asarray(d.month, dtype=float)),
    }  # fmt: skip
    if base not in table or (n is not None and base not in length):
        known = "log_return, volatility_N, rsi_N, macd, bollinger_N, atr_N, volume_z_N, range, day_of_week, month"
        raise UserError(f"data.derived: unknown input {name!r}; the derived inputs are {known}")
    return table[base]


ALL = ("log_return", "volatility_20", "rsi_14", "macd", "bollinger_20", "atr_14", "volume_z_20", "range",
       "day_of_week", "month")  # fmt: skip


def resolve(names: Sequence[str] | str | None, columns: Sequence[str]) -> list[str]:
    """The derived inputs ``data.derived`` names: a list, or ``all`` (every one the file's ``columns`` allow)."""
    if not names:
        return []
    if names == "all":
        return [n for n in ALL if set(_find(n).needs) <= set(columns)]
    names = [names] if isinstance(names, str) else list(names)
    for name in names:
        missing = [c for c in _find(name).needs if c not in columns]
        if missing:
            raise UserError(f"data.derived: {name} reads column {missing[0]}, which the file lacks (it has: "
                            f"{', '.join(map(str, columns))})")  # fmt: skip
    return names


class Recurrence:
    """The target-only and calendar inputs of ``names`` as one recurrence over rows. A row's *carry* holds the
    last prices and every exponential average; the next row's carry follows from it and the next price
    (:meth:`advance`), and every input's value from a carry and the row's date (:meth:`values`). The file's rows
    are computed this way too (:meth:`carry` over the whole history), so a forecast path extends the inputs exactly
    as the history would have, with no second formula."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(names)
        self.specs = [_find(name) for name in self.names]
        readers = [n for n, s in zip(self.names, self.specs, strict=True) if s.compute is not None]
        check(not readers, f"internal: {', '.join(readers)} read other columns than the target")  # no recurrence
        self.lags = max([s.lags for s in self.specs] + [0])
        self.averages = [a for s in self.specs for a in s.averages]

    def carry(self, prices: np.ndarray) -> np.ndarray:
        """Each row's carry (N, lags + averages): the prices of rows t - lags + 1 .. t (NaN before the first
        row), then each average's value at t (NaN over its warm-up)."""
        padded = np.concatenate([np.full(max(self.lags - 1, 0), np.nan), prices])
        last = sliding_window_view(padded, self.lags) if self.lags else np.empty((len(prices), 0))
        # the seed counts from the first defined source value (an RSI's first change is at row 1)
        averages = [_seeded_average(a.source(last), a.alpha, a.n, a.skip) for a in self.averages]
        return np.column_stack([last, *averages]) if averages else np.ascontiguousarray(last)

    def advance(self, carry: np.ndarray, price: np.ndarray) -> np.ndarray:
        """The next row's carry after a row whose carry is ``carry`` (M, C), given the next row's ``price`` (M,)."""
        if not self.lags:  # calendar inputs only: nothing is carried
            return carry
        last = np.column_stack([carry[:, 1 : self.lags], price])
        averages = [(1 - a.alpha) * carry[:, self.lags + j] + a.alpha * a.source(last)
                    for j, a in enumerate(self.averages)]  # fmt: skip
        return np.column_stack([last, *averages])

    def values(self, carry: np.ndarray, dates: pd.DatetimeIndex | np.ndarray | None) -> np.ndarray:
        """Every input's value (M, len(names)) at rows with these carries and ``dates`` (needed by calendar
        inputs only)."""
        columns, first = [], self.lags
        for name, spec in zip(self.names, self.specs, strict=True):
            if spec.calendar is not None:
                check(dates is not None, f"internal: {name} needs the forecast dates")
                columns.append(spec.calendar(pd.DatetimeIndex(dates)))
                continue
            own = carry[:, first : first + len(spec.averages)]
            columns.append(spec.value(carry[:, self.lags - spec.lags : self.lags], own))
            first += len(spec.averages)
        return np.column_stack(columns) if columns else np.empty((len(carry), 0))


@dataclass(frozen=True)
class PathInputs:
    """What a recursive forecast needs besides its windows to extend their derived inputs along its path: each
    origin's carry (B, C) and the dates of the bars it forecasts (B, steps), which calendar inputs read."""

    carry: np.ndarray
    dates: np.ndarray  # datetime64, local wall-clock times (the calendar the inputs were computed in)

    @classmethod
    def of(cls, carry: np.ndarray, dates: np.ndarray, tz: object = None) -> PathInputs:
        """From datetime64 ``dates`` (B, steps) that are UTC for a time zone ``tz``, as NumPy keeps zoned ones."""
        if tz is not None:
            local = pd.DatetimeIndex(dates.ravel()).tz_localize("UTC").tz_convert(tz).tz_localize(None)
            dates = local.values.reshape(dates.shape)
        return cls(carry, dates)


def wall_clock(dates: pd.DatetimeIndex) -> np.ndarray:
    """Dates as datetime64 in their own time zone's wall-clock time (what calendar inputs read)."""
    return (dates.tz_localize(None) if dates.tz is not None else dates).to_numpy()


def other_columns(name: str) -> tuple[str, ...]:
    """The columns of the file besides the target that input ``name`` reads: a forecast path cannot extend it."""
    return _find(name).needs


def add_derived(prices: pd.DataFrame, target: str, names: Sequence[str]) -> tuple[pd.DataFrame, int, np.ndarray]:
    """``prices`` with a column per derived input, its rows before every input is defined (the warm-up) dropped;
    how many rows were dropped; and the kept rows' carry (:class:`Recurrence`, (rows, C)) of the target-only and
    calendar inputs, from which a forecast path extends them."""
    p = prices[target]
    own = [name for name in names if not other_columns(name)]
    recurrence = Recurrence(own)
    carry = recurrence.carry(p.to_numpy(dtype=np.float64))
    if not names:
        return prices, 0, carry
    values = dict(zip(own, recurrence.values(carry, p.index).T, strict=True))
    computed = {name: values[name] if name in values else _find(name).compute(p, prices).to_numpy(dtype=float)
                for name in names}  # fmt: skip
    out = prices.assign(**computed)
    defined = out[list(names)].notna().all(axis=1).to_numpy()
    first = int(np.argmax(defined)) if defined.any() else len(out)
    return out.iloc[first:], first, carry[first:]


def kinds(names: Sequence[str]) -> list[tuple[str, tuple[float, float]]]:
    """Each derived input's scaling kind and range (pricernn.data.transforms)."""
    return [(_find(n).kind, _find(n).bounds) for n in names]
