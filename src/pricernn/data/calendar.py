"""Trading calendars: when the next bars fall and which bars a history lacks, by an exchange's sessions (holidays,
early closes) from the optional ``exchange-calendars`` package (imported only when a calendar is asked for),
round the clock (``24/7``), or without a calendar by the bars' weekly pattern (pricernn.data.frequency).
"""

from __future__ import annotations

import difflib
import logging
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from pricernn.data.frequency import (
    DAY_S,
    BarFrequency,
    clean_times,
    parse_alias,
    pattern_times,
    stamp_format,
    stamp_note,
)
from pricernn.errors import UserError, check, first_line

log = logging.getLogger("pricernn")

ROUND_THE_CLOCK = "24/7"
INSTALL = "pip install exchange-calendars (or pip install 'pricernn[calendars]')"


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


def check_options(freq: str | None, calendar: str | None) -> None:
    """``data.freq`` and ``data.calendar`` checked before any data is read: an alias pandas knows, a calendar
    exchange_calendars knows (or 24/7)."""
    if freq:
        parse_alias(freq)
    if _is_exchange(calendar):
        _exchange(calendar)


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
    wall = clean_times([last], zone)[0]
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
    dates = clean_times(dates, _exchange(calendar).tz if _is_exchange(calendar) else None)
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
        times = pattern_times(frequency, start, end, round_the_clock=calendar == ROUND_THE_CLOCK)
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


def add_missing_sessions(
    prices: pd.DataFrame, frequency: BarFrequency, calendar: str | None, fill: str
) -> pd.DataFrame:
    """With a ``calendar``, the bars it expects and ``prices`` lacks become empty rows, which ``data.fill`` then
    fills (or drops); the log line says how many. Without one, holidays are unknown and nothing is added."""
    if not calendar:
        return prices
    gaps = missing_sessions(prices.index, frequency, calendar)
    log.info("%s", describe(frequency, calendar, gaps))
    if not gaps.count:
        return prices
    missing = gaps.missing
    if not frequency.intraday:  # daily bars: the sessions' dates at the history's time of day
        missing = missing + (prices.index[-1] - prices.index[-1].normalize())
    log.info("%d missing %s bars added as empty rows for data.fill=%s", gaps.count, calendar, fill)
    return prices.reindex(prices.index.union(missing))


def describe_bars(frequency: BarFrequency, calendar: str | None, timezone: str | None) -> None:
    """Say in the log what the bars are, that holidays are unknown without a calendar, and (without
    ``data.timezone``) when daily bars are stamped at a time of day that may put them on the wrong day."""
    if timezone is None and (note := stamp_note(frequency)):
        log.info("%s", note)
    if not calendar:
        log.info("%s; no data.calendar: exchange holidays unknown", describe(frequency))
