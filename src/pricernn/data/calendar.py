"""Bar frequency and trading calendars: what a history's bars are, when the next ones fall, which ones are missing.

``pd.infer_freq`` gives up at the first weekend or holiday gap, so the frequency is read from the median spacing and
the weekly pattern of bar slots (weekday and time of day) instead. Holidays and early closes come from the optional
``exchange-calendars`` package, imported only when a calendar is asked for. Times are wall-clock times: naive stamps
are taken to be the exchange's local time, as ``load_prices`` gives them.
"""

from __future__ import annotations

import difflib
import re
import warnings
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset
from pandas.tseries.offsets import BaseOffset, Tick

from pricernn.errors import UserError, check, first_line

DAY_S = 86_400
WEEK_S = 7 * DAY_S
ROUND_THE_CLOCK = "24/7"
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
EXAMPLES = "B, D, h, 15min, W-FRI, ME, MS, QE"
INSTALL = "pip install exchange-calendars (or pip install 'pricernn[calendars]')"


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


@dataclass(frozen=True)
class Gaps:
    """Bars that the calendar (or the weekly slot pattern) expects between a history's first and last date and that
    the history lacks, so the user learns that the file has holes before a model learns across them."""

    count: int
    expected: int
    missing: pd.DatetimeIndex  # every missing bar (daily bars: their dates)

    @property
    def examples(self) -> tuple[pd.Timestamp, ...]:
        return tuple(self.missing[:3])


def infer_frequency(dates: pd.DatetimeIndex, freq: str | None = None) -> BarFrequency:
    """The bar frequency of a history, robust to weekend, holiday and overnight gaps and to a few missing bars.

    ``freq`` (the user's ``data.freq``) overrides the guess; the weekly slot pattern is still read from ``dates``.
    """
    dates = _clean(dates)
    check(len(dates) >= 3, f"need at least 3 dates to tell the bar frequency, got {len(dates)}: add rows")
    alias = _alias(freq) if freq else _guess_alias(dates)
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


def check_options(freq: str | None, calendar: str | None) -> None:
    """``data.freq`` and ``data.calendar`` checked before any data is read: an alias pandas knows, a calendar
    exchange_calendars knows (or 24/7)."""
    if freq:
        _alias(freq)
    if _is_exchange(calendar):
        _exchange(calendar)


def _alias(freq: str) -> str:
    try:
        return to_offset(str(freq).strip()).freqstr
    except ValueError:
        raise UserError(f"data.freq={freq!r} is not a pandas frequency alias: use one such as {EXAMPLES}") from None


def future_dates(
    last: pd.Timestamp, steps: int, frequency: BarFrequency, calendar: str | None = None
) -> pd.DatetimeIndex:
    """The next ``steps`` bar times after ``last``: the weekly slot pattern, every slot with ``calendar="24/7"``,
    or the trading sessions (holidays skipped, early closes respected) of an exchange calendar such as ``"XNYS"``.

    Bars longer than a day follow their pandas anchor (month ends stay month ends); a calendar does not move them.
    A last bar off its anchor (a weekly bar on Thursday before Good Friday) counts for the nearest anchor date.
    """
    last = pd.Timestamp(last)
    zone = _exchange(calendar).tz if _is_exchange(calendar) else None  # also checks the name early
    wall = _clean([last], zone)[0]
    if not frequency.slots:
        offset = frequency.offset
        back, ahead = offset.rollback(wall), offset.rollforward(wall)
        anchor = back if wall - back <= ahead - wall else ahead
        found = pd.date_range(anchor + offset, periods=steps, freq=offset)
    else:
        weeks = -(-steps // len(frequency.slots)) + 1
        for _ in range(4):  # a calendar may hold fewer bars a week than the pattern: widen the window until enough
            times = _expected(frequency, calendar, wall, wall + pd.Timedelta(weeks=weeks))
            found = times[times > wall][:steps]
            if len(found) == steps:
                break
            weeks *= 4
        check(
            len(found) == steps,
            f"data.calendar={calendar!r} gives only {len(found)} of {steps} bar times after {wall} "
            "(are the history's times in the exchange's local time?)",
        )
    if last.tz is not None:
        standard = np.zeros(len(found), dtype=bool)  # an hour that a DST change repeats: take its standard-time one
        found = found.tz_localize(zone or last.tz, ambiguous=standard, nonexistent="shift_forward").tz_convert(last.tz)
    return found


def missing_sessions(dates: pd.DatetimeIndex, frequency: BarFrequency, calendar: str | None = None) -> Gaps:
    """How many bars the calendar (or, without one, the weekly slot pattern, which counts holidays as missing)
    expects between the first and last date of ``dates`` that the history lacks, with the first few."""
    dates = _clean(dates, _exchange(calendar).tz if _is_exchange(calendar) else None)
    if len(dates) < 2:
        return Gaps(0, len(dates), pd.DatetimeIndex([]))
    expected = _expected(frequency, calendar, dates[0], dates[-1])
    seen = dates
    if not frequency.intraday and frequency.slots:  # daily bars: the date matters, not the stamp's time of day
        expected, seen = expected.normalize(), dates.normalize()
    elif not frequency.slots and len(expected) > 1:  # weekly and longer: a bar counts for its nearest anchor date
        pos = expected.searchsorted(dates).clip(1, len(expected) - 1)
        earlier = (dates - expected[pos - 1]) <= (expected[pos] - dates)
        seen = expected[np.where(earlier, pos - 1, pos)]
    missing = expected.difference(seen)
    return Gaps(len(missing), len(expected), missing)


def describe(frequency: BarFrequency, calendar: str | None = None, gaps: Gaps | None = None) -> str:
    """One line for the run log: the bars, how many a year, and the gaps against the calendar."""
    text = f"bars: {frequency.label} ({frequency.alias}), ~{frequency.periods_per_year:,.0f} a year"
    if frequency.intraday:
        text += f", {len(frequency.slots)} bar slots a week"
    if gaps is not None:
        where = f"calendar {calendar}" if calendar else "weekly pattern (no data.calendar)"
        unit = "sessions" if frequency.slots and not frequency.intraday else "bars"
        text += f"; {where}: {gaps.count} {unit} missing"
        if gaps.count:
            text += f" (e.g. {', '.join(day.strftime(stamp_format(frequency)) for day in gaps.examples)})"
    elif calendar:
        text += f"; calendar {calendar}"
    return text


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


def _clean(dates: Any, zone: Any = None) -> pd.DatetimeIndex:
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


def _guess_alias(dates: pd.DatetimeIndex) -> str:
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
        expected = _expected(frequency, None, dates[0], dates[-1])
        coverage = expected.isin(dates).mean() if len(expected) else 1.0
        return round(len(frequency.slots) * 365.25 / 7 * float(coverage), 1)
    return float(round(len(pd.date_range("2000-01-01", "2027-12-31", freq=frequency.alias)) / 28))


def _is_exchange(calendar: str | None) -> bool:
    return bool(calendar) and calendar != ROUND_THE_CLOCK


def _exchange(name: str, start: pd.Timestamp | None = None, end: pd.Timestamp | None = None) -> Any:
    """The exchange calendar covering whole years around ``start`` .. ``end`` (whole years, so that repeated calls
    share the one that exchange_calendars caches), or without them its default one, for its name and time zone."""
    try:
        import exchange_calendars as xcals
    except ImportError:
        raise UserError(f"data.calendar={name!r} needs the exchange-calendars package: {INSTALL}") from None
    names = xcals.get_calendar_names()
    if name not in names:
        near = difflib.get_close_matches(str(name).upper(), names, n=3) or ["XNYS", "XLON", "XTKS"]
        raise UserError(
            f"data.calendar={name!r} is not a known exchange calendar: try {', '.join(near)} or {ROUND_THE_CLOCK} "
            f"(exchange_calendars.get_calendar_names() lists all {len(names)})"
        )
    with warnings.catch_warnings():  # exchange_calendars 4.x reads Series.values, deprecated by pandas 3.1
        warnings.filterwarnings("ignore", message="Series.values returning an ndarray")
        default = xcals.get_calendar(name)
        if start is None or end is None:
            return default
        first, last = pd.Timestamp(f"{start.year - 1}-01-01"), pd.Timestamp(f"{end.year + 1}-12-31")
        bound = default.bound_min()  # some exchanges' rules only go back so far: start there
        try:
            return xcals.get_calendar(name, start=max(first, bound) if bound is not None else first, end=last)
        except ValueError as err:
            raise UserError(f"data.calendar={name!r} cannot cover {start} .. {end}: {first_line(err)}") from None


def _expected(frequency: BarFrequency, calendar: str | None, start: Any, end: Any) -> pd.DatetimeIndex:
    """Every bar time from ``start`` to ``end`` (both included) that the calendar or the slot pattern has."""
    if not frequency.slots:
        return pd.date_range(start, end, freq=frequency.offset)
    if _is_exchange(calendar):
        times = _session_times(frequency, _exchange(calendar, start, end), start, end)
    else:
        slots = np.asarray(frequency.slots, dtype=np.int64)
        if calendar == ROUND_THE_CLOCK:
            step = frequency.offset.nanos // 10**9 if frequency.intraday else DAY_S
            slots = np.arange(slots[0] % step, WEEK_S, step)
        weeks = pd.date_range(start.normalize() - pd.Timedelta(days=start.day_of_week), end, freq="7D")
        times = pd.DatetimeIndex((weeks.to_numpy()[:, None] + slots.astype("timedelta64[s]")[None, :]).ravel())
    return times[(times >= start) & (times <= end)]


def _session_times(frequency: BarFrequency, xcal: Any, start: Any, end: Any) -> pd.DatetimeIndex:
    """Bar times in the exchange's sessions: daily bars are the sessions; intraday bars are the history's times of
    day between a session's open and close (so early closes cut them short), on its date or, for exchanges that open
    the evening before, the day before. Bars are stamped with their start unless the history has one at a closing
    time, which shows they are stamped with their end."""
    sessions = xcal.sessions[(xcal.sessions >= start.normalize()) & (xcal.sessions <= end.normalize())]
    tods = np.unique(np.asarray(frequency.slots, dtype=np.int64) % DAY_S).astype("timedelta64[s]")
    if not frequency.intraday:
        return pd.DatetimeIndex(sessions.to_numpy() + tods[0])
    schedule = xcal.schedule.loc[sessions].apply(lambda edge: edge.dt.tz_convert(xcal.tz).dt.tz_localize(None))
    opens, closes = (schedule[edge].to_numpy()[:, None, None] for edge in ("open", "close"))
    days = sessions.to_numpy()[:, None] - np.array([1, 0], dtype="timedelta64[D]")
    grid = days[:, :, None] + tods  # session x (the day before, its own day) x time of day
    if np.isin(closes - closes.astype("datetime64[D]"), tods.max()).any():
        return pd.DatetimeIndex(np.unique(grid[(grid > opens) & (grid <= closes)]))
    return pd.DatetimeIndex(np.unique(grid[(grid >= opens) & (grid < closes)]))
