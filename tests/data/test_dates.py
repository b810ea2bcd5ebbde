"""Date columns in every convention, read back to the S&P 500's real trading days; implausible readings refused."""

import logging

import numpy as np
import pandas as pd
import pytest

from pricernn import UserError
from pricernn.data import load_prices


@pytest.fixture
def part(sp500) -> pd.DataFrame:
    return sp500[["Close"]].iloc[-300:]  # 2017-10-20 .. 2018-12-31, across both daylight-saving changes


def _write(tmp_path, dates, close, name="prices.csv"):
    path = tmp_path / name
    pd.DataFrame({"Date": dates, "Close": np.asarray(close)}).to_csv(path, index=False)
    return path


def _offsets(stamps: pd.DatetimeIndex) -> pd.Index:
    """'2018-01-02 16:00:00-05:00', the way exchanges' APIs write local times."""
    return stamps.strftime("%Y-%m-%d %H:%M:%S%z").str.replace(r"(\d\d)(\d\d)$", r"\1:\2", regex=True)


@pytest.mark.parametrize(
    ("fmt", "how"),
    [
        ("%d.%m.%Y", "day-first (%d.%m.%Y)"),
        ("%m/%d/%Y", "month-first (%m/%d/%Y)"),
        ("%d/%m/%y", "day-first (%d/%m/%y)"),
        ("%Y/%m/%d", "year-first (%Y/%m/%d)"),
        ("%b %d, %Y", "like 'Oct 20, 2017' (%b %d, %Y)"),
        ("%d %B %Y", "like '20 October 2017' (%d %B %Y)"),
        ("%Y-%m-%d %H:%M:%S", "ISO (%Y-%m-%d)"),
        ("%d.%m.%Y %H:%M", "day-first (%d.%m.%Y) with times"),
    ],
)
def test_date_formats_decided_from_the_data(part, tmp_path, caplog, fmt, how):
    stamps = part.index + pd.Timedelta(hours=15, minutes=30) if "%H" in fmt else part.index
    path = _write(tmp_path, stamps.strftime(fmt), part["Close"])
    with caplog.at_level(logging.INFO, logger="pricernn"):
        frame = load_prices(path)
    assert (frame.index == stamps).all()
    assert f"dates {how}" in caplog.text


def test_yyyymmdd_integers(part, tmp_path):
    frame = load_prices(_write(tmp_path, part.index.strftime("%Y%m%d").astype(int), part["Close"]))
    assert (frame.index == part.index).all()


def test_long_histories_in_text_and_epoch_seconds(part, tmp_path):
    """The Dow goes back to 1896: before 1970, epoch seconds are negative."""
    days = pd.bdate_range("1896-05-26", periods=len(part))
    assert (load_prices(_write(tmp_path, days.strftime("%Y-%m-%d"), part["Close"])).index == days).all()
    seconds = days.as_unit("s").asi8
    assert (load_prices(_write(tmp_path, seconds, part["Close"], "epoch.csv")).index == days).all()


def test_ambiguous_day_order_is_an_error_that_names_the_options(sp500, tmp_path):
    early = sp500[["Close"]].loc["2018-03-01":"2018-03-12"]  # every day <= 12: 01/03 is 1 March or January 3
    path = _write(tmp_path, early.index.strftime("%d/%m/%Y"), early["Close"])
    expected = (
        r"prices.csv: column 'Date' has dates that read both day-first and month-first, e.g. '01/03/2018' at line 2; "
        r"set data.dayfirst=true \(day first\) or data.dayfirst=false, or data.date_format \(e.g. %d/%m/%Y\)"
    )
    with pytest.raises(UserError, match=expected):
        load_prices(path)
    assert (load_prices(path, dayfirst=True).index == early.index).all()
    assert (load_prices(path, date_format="%d/%m/%Y").index == early.index).all()
    assert load_prices(path, dayfirst=False).index.min() == pd.Timestamp("2018-01-03")


def test_zone_aware_stamps_keep_the_exchange_clock_across_daylight_saving(part, tmp_path, caplog):
    """16:00 New York closes written with -04:00 in summer and -05:00 in winter stay 16:00 on their day."""
    closes = (part.index + pd.Timedelta(hours=16)).tz_localize("America/New_York")
    path = _write(tmp_path, _offsets(closes), part["Close"])
    with caplog.at_level(logging.INFO, logger="pricernn"):
        frame = load_prices(path)
    assert (frame.index == closes.tz_localize(None)).all()
    assert "local wall time kept across offsets -05:00/-04:00" in caplog.text
    utc = load_prices(path, timezone="UTC")
    assert (utc.index == closes.tz_convert("UTC").tz_localize(None)).all()
    assert set(utc.index.hour) == {20, 21}


def test_utc_stamps_and_european_midnights(part, tmp_path):
    """'Z' stamps convert to any zone asked; daily bars at local midnight keep their day (not the day before)."""
    closes = (part.index + pd.Timedelta(hours=16)).tz_localize("America/New_York").tz_convert("UTC")
    path = _write(tmp_path, closes.strftime("%Y-%m-%dT%H:%M:%SZ"), part["Close"])
    assert (load_prices(path).index == closes.tz_localize(None)).all()
    local = load_prices(path, timezone="America/New_York").index
    assert (local == part.index + pd.Timedelta(hours=16)).all()
    midnights = part.index.tz_localize("Europe/Berlin")  # +01:00 in winter, +02:00 in summer
    assert (load_prices(_write(tmp_path, _offsets(midnights), part["Close"], "xetra.csv")).index == part.index).all()


def test_a_wall_clock_that_runs_back_is_read_in_utc(part, tmp_path, caplog):
    """Hourly round-the-clock bars across the autumn change repeat 01:00 in local time: UTC keeps them apart."""
    hours = pd.date_range("2018-10-27", periods=len(part), freq="h", tz="Europe/London")
    path = _write(tmp_path, _offsets(hours), part["Close"])
    with caplog.at_level(logging.INFO, logger="pricernn"):
        frame = load_prices(path)
    assert (frame.index == hours.tz_convert("UTC").tz_localize(None)).all()
    assert "offsets +00:00/+01:00 converted to UTC (set data.timezone to choose)" in caplog.text
    with pytest.raises(UserError, match=r"unknown data.timezone=Mars/Olympus"):
        load_prices(path, timezone="Mars/Olympus")


def test_dates_that_collapse_onto_1970_are_refused(part, tmp_path):
    """Row numbers given as the date column read as epoch seconds: 300 days in five minutes of 1970."""
    path = _write(tmp_path, np.arange(len(part)), part["Close"])
    expected = (
        r"prices.csv: column 'Date': all 300 dates fall between 1970-01-01 00:00:00 and 1970-01-01 00:04:59, as "
        r"numbers read in the wrong unit do \('299' read as 1970-01-01 00:04:59, dates epoch seconds\) at line 301; "
        r"write the dates as text"
    )
    with pytest.raises(UserError, match=expected):
        load_prices(path)


def test_dates_in_the_future_are_refused(part, tmp_path):
    later = part.index + pd.DateOffset(years=200)  # Oct 2017 + 200 years: the future for a long while
    path = _write(tmp_path, later.strftime("%Y-%m-%d"), part["Close"])
    expected = r"column 'Date' has a date after today: '2217-10-20' read as 2217-10-20 00:00:00 at line 2"
    with pytest.raises(UserError, match=expected):
        load_prices(path)
