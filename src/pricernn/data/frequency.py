"""Bar frequency: what a history's bars are (business daily, 7-day daily, hourly, weekly, monthly, ...), how long
one lasts, how many come a year, and how bar times are written.

``pd.infer_freq`` gives up at the first weekend or holiday gap, so the frequency is read from the median spacing and
the weekly pattern of bar slots (weekday and time of day) instead. Times are wall-clock times: naive stamps are
taken to be the exchange's local time, as ``load_prices`` gives them. Trading calendars: pricernn.data.calendar.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset
from pandas.tseries.offsets import BaseOffset, Tick

from pricernn.errors import UserError, check

DAY_S = 86_400
WEEK_S = 7 * DAY_S
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
EXAMPLES = "B, D, h, 15min, W-FRI, ME, MS, QE"


@dataclass(frozen=True)
class BarFrequency:
    """How often bars come, stored with a model so that forecasts and annualised figures use the training bars.

    ``alias`` is a pandas offset alias; ``periods_per_year`` annualises volatility and Sharpe ratios; ``label`` is for
    people. ``slots`` (daily and intraday bars only) are the seconds after Monday 00:00 at which bars occur in a week,
    as observed: future bars follow them, so hourly stock bars skip nights and weekends while FX bars run overnight.
    """

    alias: str
    periods_per_year: float
    label: str
    slots: tuple[int, ...] = ()

    @property
    def offset(self) -> BaseOffset:
        """The pandas offset of one bar."""
        return to_offset(self.alias)

    @property
    def intraday(self) -> bool:
        """Bars shorter than a day: their times of day matter, not just their dates."""
        return _is_intraday(self.offset)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (str, float, a list of ints) for a checkpoint that is loaded with ``weights_only``."""
        return {"alias": self.alias, "periods_per_year": float(self.periods_per_year), "label": self.label,
                "slots": list(self.slots)}  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BarFrequency:
        """The frequency that ``to_dict`` stored."""
        slots = tuple(int(slot) for slot in data.get("slots", ()))
        return cls(str(data["alias"]), float(data["periods_per_year"]), str(data["label"]), slots)


def infer_frequency(dates: pd.DatetimeIndex, freq: str | None = None) -> BarFrequency:
    """The bar frequency of a history, robust to weekend, holiday and overnight gaps and to a few missing bars.

    ``freq`` (the user's ``data.freq``) overrides the guess; the weekly slot pattern is still read from ``dates``.
    """
    dates = clean_times(dates)
    check(len(dates) >= 3, f"need at least 3 dates to tell the bar frequency, got {len(dates)}: add rows")
    alias = parse_alias(freq) if freq else _guessparse_alias(dates)
    offset = to_offset(alias)
    of_day = (dates - dates.normalize()).total_seconds().to_numpy()
    seconds = (dates.day_of_week.to_numpy() * DAY_S + of_day).astype(np.int64)  # after the Monday 00:00 of the week
    if _is_intraday(offset):
        slots = _frequent(seconds)
    elif alias in ("B", "C", "D"):
        days = {"B": range(5), "D": range(7)}.get(alias) or _frequent(dates.day_of_week.to_numpy())
        slots = tuple(int(day * DAY_S + _mode(seconds % DAY_S)) for day in days)
    else:
        slots = ()
    frequency = BarFrequency(alias, 0.0, _label(alias, slots), slots)
    return replace(frequency, periods_per_year=_per_year(frequency, dates))


def parse_alias(freq: str) -> str:
    try:
        return to_offset(str(freq).strip()).freqstr
    except ValueError:
        raise UserError(f"data.freq={freq!r} is not a pandas frequency alias: use one such as {EXAMPLES}") from None


def bar_days(frequency: BarFrequency) -> float:
    """How long one bar lasts, in days: an intraday bar's own length, one day for daily bars whatever their weekly
    pattern (business days, 7 days a week), else the year shared among the bars (7 for weekly, ~30 for monthly)."""
    offset = frequency.offset
    if frequency.intraday:
        return pd.Timedelta(offset.nanos).total_seconds() / DAY_S
    if frequency.slots:
        return 1.0
    return 365.25 / frequency.periods_per_year


def bar_word(frequency: BarFrequency) -> str:
    """What one bar is called in a sentence ("day", "hour", "month", ...): "bar" where no word fits."""
    if frequency.intraday:
        return {"h": "hour", "min": "minute"}.get(frequency.alias, "bar")
    if frequency.slots:
        return "day"
    for prefix, word in (("W", "week"), ("Q", "quarter"), ("Y", "year"), ("B", "month"), ("M", "month")):
        if frequency.alias.startswith(prefix):
            return word
    return "bar"


def stamp_format(frequency: BarFrequency) -> str:
    """How bar times are written in files and messages: the time of day only where bars are shorter than a day."""
    return "%Y-%m-%d %H:%M" if frequency.intraday else "%Y-%m-%d"


def pattern_times(frequency: BarFrequency, start: Any, end: Any, round_the_clock: bool = False) -> pd.DatetimeIndex:
    """The bar times of the weekly slot pattern in the weeks from ``start`` to ``end`` (every slot of the bar's
    length, day and night, with ``round_the_clock``); the caller trims them to the period."""
    slots = np.asarray(frequency.slots, dtype=np.int64)
    if round_the_clock:
        step = frequency.offset.nanos // 10**9 if frequency.intraday else DAY_S
        slots = np.arange(slots[0] % step, WEEK_S, step)
    weeks = pd.date_range(start.normalize() - pd.Timedelta(days=start.day_of_week), end, freq="7D")
    return pd.DatetimeIndex((weeks.to_numpy()[:, None] + slots.astype("timedelta64[s]")[None, :]).ravel())


def clean_times(dates: Any, zone: Any = None) -> pd.DatetimeIndex:
    """Sorted unique wall-clock times; aware stamps are first converted to ``zone`` (the exchange's), if given."""
    index = pd.DatetimeIndex(dates)
    if index.tz is not None:
        index = (index.tz_convert(zone) if zone is not None else index).tz_localize(None)
    return index.dropna().unique().sort_values()


def _is_intraday(offset: BaseOffset) -> bool:
    return isinstance(offset, Tick) and offset.nanos < DAY_S * 10**9


def _frequent(values: np.ndarray) -> tuple[int, ...]:
    """The values seen often enough (a quarter of the typical count) to be part of the pattern, not a stray bar."""
    unique, counts = np.unique(values, return_counts=True)
    return tuple(int(v) for v in unique[counts >= 0.25 * np.median(counts)])


def _mode(values: np.ndarray) -> int:
    """The most common value (the smallest of those tied)."""
    unique, counts = np.unique(values, return_counts=True)
    return int(unique[counts.argmax()])


def _guessparse_alias(dates: pd.DatetimeIndex) -> str:
    """The alias from the median spacing: weekends, nights and holidays are the minority of gaps."""
    gaps = np.diff(dates.to_numpy()).astype("timedelta64[s]").astype(np.int64)
    days = float(np.median(gaps)) / DAY_S
    if days < 20 / 24:
        return to_offset(pd.Timedelta(seconds=_mode(gaps[gaps < DAY_S]))).freqstr
    if days <= 4:
        weekdays = set(_frequent(dates.day_of_week.to_numpy()))
        return "B" if weekdays <= set(range(5)) else "D" if weekdays >= {5, 6} else "C"
    if days <= 24:
        weeks = round(days / 7)
        weekday = _mode(dates.day_of_week.to_numpy())
        return f"{weeks if weeks > 1 else ''}W-{WEEKDAYS[weekday][:3].upper()}"
    days_only = dates.normalize()
    scores = {  # which day of the month the stamps sit on; ties go to the calendar anchors, listed first
        "E": (days_only.day == days_only.days_in_month).mean(),
        "S": (days_only.day == 1).mean(),
        "BE": (days_only == days_only + pd.offsets.BMonthEnd(0)).mean(),
        "BS": (days_only == days_only + pd.offsets.BMonthBegin(0)).mean(),
    }
    anchor = max(scores, key=scores.__getitem__)
    business, edge = ("B", anchor[1]) if len(anchor) == 2 else ("", anchor)
    months = max(1, round(days / 30.44))
    if months % 12 == 0:
        month = _mode(dates.month.to_numpy())
        return f"{months // 12 if months > 12 else ''}{business}Y{edge}-{MONTHS[month - 1]}"
    if months == 3:
        cycle = _mode(dates.month.to_numpy() % 3)  # which of the three quarterly cycles: 0 is Mar, Jun, Sep, Dec
        return f"{business}Q{edge}-{MONTHS[(cycle - 1) % 3] if edge == 'S' else MONTHS[cycle - 1]}"
    return f"{months if months > 1 else ''}{business}M{edge}"


def _label(alias: str, slots: tuple[int, ...]) -> str:
    offset = to_offset(alias)
    if _is_intraday(offset):
        seconds = offset.nanos // 10**9
        size, unit = (3600, "hour") if seconds % 3600 == 0 else (60, "minute") if seconds % 60 == 0 else (1, "second")
        return "hourly" if seconds == 3600 else f"{seconds // size}-{unit}"
    if alias in ("B", "D", "C"):
        days = ", ".join(WEEKDAYS[slot // DAY_S][:3] for slot in slots)
        return {"B": "business daily", "D": "daily, 7 days a week"}.get(alias, f"daily ({days})")
    match = re.fullmatch(r"(\d*)(B?)([WMQY])([ES]?)-?(\w*)", alias)
    if match is None:
        return f"every {alias}"
    count, business, unit, edge, anchor = match.groups()
    word, adverb = {"W": ("week", "weekly"), "M": ("month", "monthly"), "Q": ("quarter", "quarterly"),
                    "Y": ("year", "yearly")}[unit]  # fmt: skip
    every = f"every {count} {word}s" if count not in ("", "1") else adverb
    if unit == "W":
        return f"{every} ({next(day for day in WEEKDAYS if day[:3].upper() == anchor)}s)"
    end, last = ("end", "last") if edge == "E" else ("start", "first")
    return f"{every} ({last} business day)" if business else f"{every} ({word} {end})"


def _per_year(frequency: BarFrequency, dates: pd.DatetimeIndex) -> float:
    """Bars a year: the conventions for daily bars and longer, and for intraday bars the weekly slots scaled by
    the share of them the history has (holidays and half days make it fewer than the pattern's count)."""
    if frequency.alias in ("B", "D"):
        return {"B": 252.0, "D": 365.0}[frequency.alias]
    if frequency.slots:
        expected = pattern_times(frequency, dates[0], dates[-1])
        expected = expected[(expected >= dates[0]) & (expected <= dates[-1])]
        coverage = expected.isin(dates).mean() if len(expected) else 1.0
        return round(len(frequency.slots) * 365.25 / 7 * float(coverage), 1)
    return float(round(len(pd.date_range("2000-01-01", "2027-12-31", freq=frequency.alias)) / 28))


def stamp_note(frequency: BarFrequency) -> str | None:
    """What to say of daily bars stamped at a time of day other than midnight (UTC times of a market elsewhere
    would put a bar on the wrong trading day), or None."""
    stamped = frequency.slots[0] % 86_400 if frequency.slots and not frequency.intraday else 0
    if not stamped:
        return None
    return (f"daily bars stamped at {stamped // 3600:02d}:{stamped % 3600 // 60:02d}, not midnight: if these are UTC "
            "times of a market elsewhere, set data.timezone (e.g. Asia/Tokyo) so that each bar falls on its own "
            "trading day")  # fmt: skip
