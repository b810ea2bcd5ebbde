"""Inputs derived from the price history by name (``data.derived=[log_return, volatility_20, rsi_14, ...]``), each
computed from rows up to its own row only: trailing windows and causal smoothing, never a centred window or a fill
from a later row. Every input's value at row t is unchanged when any row after t changes (``tests/test_derived.py``
checks it for each one).

Formulas are pandas one-liners in their textbook definitions: RSI and ATR with Wilder's smoothing (an exponential
average with α = 1/n), seeded with the first value where TA-Lib seeds with the n-bar mean, a difference that decays
as (1 - 1/n)^t. TA-Lib itself needs a C library this project does not require. Each input has a *kind*, which says
how it is scaled (pricernn.data.transforms): ``standard`` (standardised with training-period statistics: returns,
volatility, oscillators in units of the price) or ``bounded`` (a fixed range mapped to [-1, 1]: RSI, day of week,
month).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pricernn.errors import UserError


@dataclass(frozen=True)
class Derived:
    """One derived input: how it is computed from the target price ``p`` (a Series) and the frame, its kind,
    and for a bounded one its range."""

    compute: Callable[[pd.Series, pd.DataFrame], pd.Series]
    kind: str  # "standard" | "bounded"
    bounds: tuple[float, float] = (0.0, 1.0)
    needs: tuple[str, ...] = ()  # other columns of the file it reads (High, Low, Volume)


def _log_return(p: pd.Series) -> pd.Series:
    return np.log(p / p.shift(1))


def _rsi(p: pd.Series, n: int) -> pd.Series:
    """Wilder's relative strength index: 100 - 100 / (1 + average gain / average loss), both averaged by
    Wilder's smoothing (an exponential average with α = 1/n) of the one-bar changes."""
    change = p.diff()
    gain = change.clip(lower=0).ewm(alpha=1 / n, adjust=False, min_periods=n).mean()
    loss = (-change.clip(upper=0)).ewm(alpha=1 / n, adjust=False, min_periods=n).mean()
    rsi = 100 - 100 / (1 + gain / loss.where(loss > 0))
    return rsi.mask(loss == 0, np.where(gain > 0, 100.0, 50.0))  # only gains: 100; no change at all: 50


def _macd(p: pd.Series) -> pd.Series:
    """The MACD line (12-bar EMA minus 26-bar EMA) as a fraction of the price (the percentage price
    oscillator), so that it compares across price levels and assets."""
    fast = p.ewm(span=12, adjust=False, min_periods=26).mean()
    slow = p.ewm(span=26, adjust=False, min_periods=26).mean()
    return (fast - slow) / p


def _bollinger(p: pd.Series, n: int) -> pd.Series:
    """Where the price lies in its Bollinger band: (p - n-bar mean) / (2 n-bar standard deviations)."""
    mean, std = p.rolling(n).mean(), p.rolling(n).std()
    return ((p - mean) / (2 * std.where(std > 0))).mask(std == 0, 0.0)  # a flat band: at its middle


def _atr(frame: pd.DataFrame, p: pd.Series, n: int) -> pd.Series:
    """Wilder's average true range over n bars, as a fraction of the price."""
    high, low, close_before = frame["High"], frame["Low"], p.shift(1)
    true_range = pd.concat([high - low, (high - close_before).abs(), (low - close_before).abs()], axis=1).max(axis=1)
    true_range[close_before.isna()] = np.nan
    return true_range.ewm(alpha=1 / n, adjust=False, min_periods=n).mean() / p


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
    k = n or length.get(base, 0)
    table = {
        "log_return": Derived(lambda p, f: _log_return(p), "standard"),
        "volatility": Derived(lambda p, f: _log_return(p).rolling(k).std(), "standard"),
        "rsi": Derived(lambda p, f: _rsi(p, k), "bounded", (0.0, 100.0)),
        "macd": Derived(lambda p, f: _macd(p), "standard"),
        "bollinger": Derived(lambda p, f: _bollinger(p, k), "standard"),
        "atr": Derived(lambda p, f: _atr(f, p, k), "standard", needs=("High", "Low")),
        "volume_z": Derived(lambda p, f: _volume_z(f, k), "standard", needs=("Volume",)),
        "range": Derived(lambda p, f: (f["High"] - f["Low"]) / p, "standard", needs=("High", "Low")),
        "day_of_week": Derived(lambda p, f: pd.Series(p.index.day_of_week, p.index, dtype=float), "bounded", (0, 6)),
        "month": Derived(lambda p, f: pd.Series(p.index.month, p.index, dtype=float), "bounded", (1.0, 12.0)),
    }
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


def add_derived(prices: pd.DataFrame, target: str, names: Sequence[str]) -> tuple[pd.DataFrame, int]:
    """``prices`` with a column per derived input, its rows before every input is defined (the warm-up) dropped;
    and how many rows were dropped."""
    if not names:
        return prices, 0
    p = prices[target]
    out = prices.assign(**{name: _find(name).compute(p, prices).astype(float) for name in names})
    defined = out[list(names)].notna().all(axis=1).to_numpy()
    first = int(np.argmax(defined)) if defined.any() else len(out)
    return out.iloc[first:], first


def kinds(names: Sequence[str]) -> list[tuple[str, tuple[float, float]]]:
    """Each derived input's scaling kind and range (pricernn.data.transforms)."""
    return [(_find(n).kind, _find(n).bounds) for n in names]
