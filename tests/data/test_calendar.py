"""Bar frequency and trading calendars: inference on generated and real dates, future bar times, gaps, storage."""

from __future__ import annotations

import io
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from pricernn.data.calendar import describe, future_dates, missing_sessions
from pricernn.data.frequency import BarFrequency, infer_frequency
from pricernn.errors import UserError

try:
    import exchange_calendars  # noqa: F401

    HAVE_XCALS = True
except ImportError:
    HAVE_XCALS = False
needs_xcals = pytest.mark.skipif(not HAVE_XCALS, reason="exchange-calendars (optional) is not installed")


def stamps(*values: str) -> list[pd.Timestamp]:
    return [pd.Timestamp(value) for value in values]


def intraday(days: pd.DatetimeIndex, first: str, last: str, step: str) -> pd.DatetimeIndex:
    """Bars every ``step`` from ``first`` to ``last`` o'clock on each of ``days``."""
    times = pd.timedelta_range(first, last, freq=step).to_numpy()
    return pd.DatetimeIndex((days.to_numpy()[:, None] + times[None, :]).ravel())


def fx_hours(start: str, end: str) -> pd.DatetimeIndex:
    """Hourly FX bars: Sunday 17:00 to Friday 16:00, around the clock in between."""
    hours = pd.date_range(start, end, freq="h")
    weekday, hour = hours.day_of_week, hours.hour
    closed = (weekday == 5) | ((weekday == 6) & (hour < 17)) | ((weekday == 4) & (hour > 16))
    return hours[~closed]


@needs_xcals
def test_sp500_is_business_daily_and_complete_on_xnys(sp500):
    frequency = infer_frequency(sp500.index)
    assert (frequency.alias, frequency.periods_per_year, frequency.label) == ("B", 252.0, "business daily")
    assert missing_sessions(sp500.index, frequency, "XNYS").count == 0
    by_weekdays = missing_sessions(sp500.index, frequency)  # without a calendar, every holiday is a gap
    assert 150 < by_weekdays.count < 220
    assert by_weekdays.examples[0] == pd.Timestamp("1999-01-18")  # Martin Luther King day


@needs_xcals
def test_business_daily_gaps_are_counted_against_the_calendar():
    closed = stamps("2024-12-25", "2025-01-01", "2025-01-09")  # the last for President Carter's funeral
    sessions = pd.bdate_range("2024-12-02", "2025-01-31").difference(closed)
    history = sessions.difference(stamps("2024-12-10", "2025-01-15"))  # two bars lost from the file
    frequency = infer_frequency(history[::-1])  # in any order
    assert frequency == infer_frequency(history.append(pd.DatetimeIndex(["2024-12-14"])))  # a stray Saturday bar
    assert frequency.alias == "B"
    gaps = missing_sessions(history, frequency, "XNYS")
    assert (gaps.count, gaps.examples) == (2, tuple(stamps("2024-12-10", "2025-01-15")))
    assert missing_sessions(history, frequency).count == 5  # the weekday pattern also counts the closed days
    line = describe(frequency, "XNYS", gaps)
    assert (
        line == "bars: business daily (B), ~252 a year; calendar XNYS: 2 sessions missing (e.g. 2024-12-10, 2025-01-15)"
    )


@needs_xcals
def test_xnys_skips_holidays_in_future_sessions():
    frequency = infer_frequency(pd.bdate_range("2024-11-01", "2024-12-23"))
    expected = stamps("2024-12-24", "2024-12-26", "2024-12-27", "2024-12-30", "2024-12-31", "2025-01-02")
    assert list(future_dates(pd.Timestamp("2024-12-23"), 6, frequency, "XNYS")) == expected
    assert list(future_dates(pd.Timestamp("2024-12-23"), 2, frequency)) == stamps("2024-12-24", "2024-12-25")
    closes = infer_frequency(pd.bdate_range("2024-11-01", "2024-12-23") + pd.Timedelta(hours=16))  # stamped 16:00
    after = future_dates(pd.Timestamp("2024-12-23 16:00"), 2, closes, "XNYS")
    assert list(after) == stamps("2024-12-24 16:00", "2024-12-26 16:00")


def test_round_the_clock_daily_bars():
    history = pd.date_range("2024-01-01", "2024-03-31", freq="D").delete([10, 11])
    frequency = infer_frequency(history)
    assert (frequency.alias, frequency.periods_per_year, frequency.label) == ("D", 365.0, "daily, 7 days a week")
    assert list(future_dates(history[-1], 2, frequency)) == stamps("2024-04-01", "2024-04-02")
    assert missing_sessions(history, frequency).count == 2
    weekdays = infer_frequency(pd.bdate_range("2024-03-01", "2024-03-29"))
    assert list(future_dates(pd.Timestamp("2024-03-29"), 2, weekdays, "24/7")) == stamps("2024-03-30", "2024-03-31")


def test_sunday_to_thursday_daily_bars():
    history = pd.date_range("2024-01-07", "2024-03-28", freq="D")
    history = history[history.day_of_week.isin([6, 0, 1, 2, 3])]
    frequency = infer_frequency(history)
    assert (frequency.alias, frequency.label) == ("C", "daily (Mon, Tue, Wed, Thu, Sun)")
    assert list(future_dates(history[-1], 2, frequency)) == stamps("2024-03-31", "2024-04-01")


@needs_xcals
def test_hourly_stock_bars_skip_nights_and_weekends():
    history = intraday(pd.bdate_range("2024-01-01", "2024-01-26"), "9h30min", "15h30min", "h")
    frequency = infer_frequency(history)
    assert (frequency.alias, frequency.label, len(frequency.slots)) == ("h", "hourly", 35)
    assert frequency.periods_per_year == pytest.approx(35 * 365.25 / 7, abs=0.1)  # every slot seen
    friday = pd.Timestamp("2024-01-26 15:30")
    assert list(future_dates(friday, 3, frequency)) == stamps(
        "2024-01-29 09:30", "2024-01-29 10:30", "2024-01-29 11:30"
    )
    around_the_clock = future_dates(friday, 2, frequency, "24/7")
    assert list(around_the_clock) == stamps("2024-01-26 16:30", "2024-01-26 17:30")
    holey = history[history.normalize() != pd.Timestamp("2024-01-15")]  # a day's seven bars lost
    assert infer_frequency(holey).periods_per_year == pytest.approx(35 * 365.25 / 7 * 19 / 20, abs=0.1)
    assert missing_sessions(holey, frequency).count == 7
    assert missing_sessions(holey, frequency, "XNYS").count == 0  # 2024-01-15 was a holiday


def test_five_minute_bars_continue_with_the_next_session():
    history = intraday(pd.bdate_range("2024-03-04", "2024-03-15"), "9h30min", "15h55min", "5min")
    frequency = infer_frequency(history)
    assert (frequency.alias, frequency.label, len(frequency.slots)) == ("5min", "5-minute", 5 * 78)
    assert list(future_dates(history[-1], 2, frequency)) == stamps("2024-03-18 09:30", "2024-03-18 09:35")
    assert frequency.to_dict()["slots"][:2] == [34200, 34500]  # Monday 09:30 and 09:35, in seconds


def test_thinly_traded_minute_bars_keep_their_step():
    minutes = pd.date_range("2024-01-01", periods=5000, freq="min")
    history = minutes[np.random.default_rng(0).random(len(minutes)) < 0.4]  # most gaps are longer than a minute
    assert infer_frequency(history).alias == "min"


def test_hourly_fx_runs_through_the_night():
    history = fx_hours("2024-01-07 17:00", "2024-02-02 16:00")
    frequency = infer_frequency(history)
    assert (frequency.alias, len(frequency.slots)) == ("h", 120)
    assert frequency.periods_per_year == pytest.approx(120 * 365.25 / 7, abs=0.1)
    thursday = pd.Timestamp("2024-02-01 23:00")
    assert list(future_dates(thursday, 2, frequency)) == stamps("2024-02-02 00:00", "2024-02-02 01:00")
    assert list(future_dates(history[-1], 2, frequency)) == stamps("2024-02-04 17:00", "2024-02-04 18:00")


@needs_xcals
def test_xnys_intraday_bars_respect_holidays_and_early_closes():
    hourly = infer_frequency(intraday(pd.bdate_range("2024-12-02", "2024-12-13"), "9h30min", "15h30min", "h"))
    after = future_dates(pd.Timestamp("2024-12-23 15:30"), 5, hourly, "XNYS")  # closes at 13:00 on Christmas Eve
    assert list(after) == stamps("2024-12-24 09:30", "2024-12-24 10:30", "2024-12-24 11:30", "2024-12-24 12:30",
                                 "2024-12-26 09:30")  # fmt: skip
    five = infer_frequency(intraday(pd.bdate_range("2024-12-02", "2024-12-13"), "9h30min", "15h55min", "5min"))
    after = future_dates(pd.Timestamp("2024-12-24 12:50"), 2, five, "XNYS")
    assert list(after) == stamps("2024-12-24 12:55", "2024-12-26 09:30")
    ending = infer_frequency(intraday(pd.bdate_range("2024-12-02", "2024-12-13"), "10h", "16h", "30min"))
    after = future_dates(pd.Timestamp("2024-12-24 12:30"), 2, ending, "XNYS")  # bars stamped with their end
    assert list(after) == stamps("2024-12-24 13:00", "2024-12-26 10:00")
    history = intraday(pd.bdate_range("2024-12-16", "2024-12-31"), "9h30min", "15h30min", "h")
    gaps = missing_sessions(history.delete(3), hourly, "XNYS")  # Christmas Day is no gap, 12:30 on the 16th is
    assert (gaps.count, gaps.examples) == (1, (pd.Timestamp("2024-12-16 12:30"),))


@needs_xcals
def test_exchange_hours_cut_a_round_the_clock_pattern():
    fx = infer_frequency(fx_hours("2024-01-07 17:00", "2024-02-02 16:00"))
    on_nyse = future_dates(pd.Timestamp("2024-02-02 16:00"), 300, fx, "XNYS")  # 6 hours a session: 10:00 .. 15:00
    assert len(on_nyse) == 300 and on_nyse[0] == pd.Timestamp("2024-02-05 10:00")
    assert set(on_nyse.hour) == set(range(10, 16)) and set(on_nyse.day_of_week) == set(range(5))
    after = future_dates(pd.Timestamp("2024-02-02 16:00"), 2, fx, "CMES")  # Monday's session opens Sunday 17:00
    assert list(after) == stamps("2024-02-04 17:00", "2024-02-04 18:00")


@pytest.mark.parametrize(
    ("alias", "label", "last", "following"),
    [
        ("ME", "monthly (month end)", "2024-01-31", ("2024-02-29", "2024-03-31")),
        ("MS", "monthly (month start)", "2024-01-01", ("2024-02-01", "2024-03-01")),
        ("BME", "monthly (last business day)", "2024-03-29", ("2024-04-30", "2024-05-31")),
        ("QE-DEC", "quarterly (quarter end)", "2023-12-31", ("2024-03-31", "2024-06-30")),
        ("QS-JAN", "quarterly (quarter start)", "2024-01-01", ("2024-04-01", "2024-07-01")),
        ("QE-FEB", "quarterly (quarter end)", "2024-02-29", ("2024-05-31", "2024-08-31")),
        ("YE-DEC", "yearly (year end)", "2023-12-31", ("2024-12-31", "2025-12-31")),
    ],
)
def test_monthly_and_longer_bars_keep_their_anchor(alias, label, last, following):
    history = pd.date_range(end=last, periods=40, freq=alias)
    frequency = infer_frequency(history)
    assert (frequency.alias, frequency.label, frequency.slots) == (alias, label, ())
    assert frequency.periods_per_year == {"M": 12, "Q": 4, "Y": 1}[alias.lstrip("B")[0]]
    assert list(future_dates(history[-1], 2, frequency)) == stamps(*following)
    assert missing_sessions(history.delete([5, 6]), frequency).count == 2


def test_weekly_bars_tolerate_holidays_moved_to_thursday():
    fridays = pd.date_range("2023-01-06", "2024-03-29", freq="W-FRI")
    history = fridays.difference(stamps("2023-04-07", "2024-03-29")).union(stamps("2023-04-06", "2024-03-28"))
    frequency = infer_frequency(history)  # Good Fridays: the weeks close on Thursday
    assert (frequency.alias, frequency.periods_per_year, frequency.label) == ("W-FRI", 52.0, "weekly (Fridays)")
    assert list(future_dates(history[-1], 2, frequency)) == stamps("2024-04-05", "2024-04-12")
    assert missing_sessions(history, frequency).count == 0
    assert missing_sessions(history.delete(3), frequency).examples == (pd.Timestamp("2023-01-27"),)


def test_freq_overrides_the_guess_and_bad_aliases_name_the_option():
    history = pd.bdate_range("2024-01-01", "2024-03-29")
    assert infer_frequency(history, "W-FRI").alias == "W-FRI"
    assert infer_frequency(history, "D").periods_per_year == 365.0
    for bad in ("fortnightly", "M"):  # "M" is no alias since pandas 3: "ME"
        with pytest.raises(UserError, match=r"^data\.freq='.*' is not a pandas frequency alias: .*B, D, h, 15min"):
            infer_frequency(history, bad)
    with pytest.raises(UserError, match="at least 3 dates"):
        infer_frequency(history[:2])


@needs_xcals
def test_unknown_calendar_names_the_option_and_near_names():
    frequency = infer_frequency(pd.date_range("2020-01-31", periods=12, freq="ME"))
    with pytest.raises(UserError, match=r"^data\.calendar='XNYZ' is not a known exchange calendar: try .*XNYS"):
        future_dates(pd.Timestamp("2020-12-31"), 3, frequency, "XNYZ")  # even for bars that a calendar does not move


def test_calendar_without_the_package_says_how_to_install_it(monkeypatch):
    frequency = infer_frequency(pd.bdate_range("2024-01-01", "2024-03-29"))
    monkeypatch.setitem(sys.modules, "exchange_calendars", None)  # as if it were not installed
    with pytest.raises(UserError, match=r"pip install exchange-calendars"):
        missing_sessions(pd.bdate_range("2024-01-01", "2024-03-29"), frequency, "XNYS")
    assert len(future_dates(pd.Timestamp("2024-03-29"), 3, frequency, "24/7")) == 3  # needs no package


@pytest.mark.parametrize(
    "history",
    [
        fx_hours("2024-01-07 17:00", "2024-01-19 16:00"),
        pd.bdate_range("2024-01-01", "2024-02-29") + pd.Timedelta(hours=16),
        pd.date_range("2020-01-31", periods=12, freq="ME"),
    ],
)
def test_frequency_survives_a_weights_only_checkpoint(history):
    frequency = infer_frequency(history)
    buffer = io.BytesIO()
    torch.save({"frequency": frequency.to_dict()}, buffer)
    buffer.seek(0)
    restored = BarFrequency.from_dict(torch.load(buffer, weights_only=True)["frequency"])
    assert restored == frequency
    assert list(future_dates(history[-1], 3, restored)) == list(future_dates(history[-1], 3, frequency))


@needs_xcals
def test_aware_times_come_back_in_their_zone():
    history = intraday(pd.bdate_range("2024-03-04", "2024-03-15"), "9h30min", "15h30min", "h")
    frequency = infer_frequency(history.tz_localize("America/New_York"))
    last = pd.Timestamp("2024-03-15 19:30", tz="UTC")  # 15:30 in New York
    after = future_dates(last, 2, frequency, "XNYS")
    assert list(after) == list(pd.DatetimeIndex(stamps("2024-03-18 13:30", "2024-03-18 14:30")).tz_localize("UTC"))
    assert np.all(after.tz_convert("America/New_York").hour == [9, 10])
