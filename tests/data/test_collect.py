"""Collecting prices by ticker, tested at yfinance's boundary: the download is replaced by frames in the format
yfinance.download returns (no network here), built the way its multi.py builds them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pricernn.data import collect as collecting
from pricernn.data import load_prices
from pricernn.errors import UserError

PRICES = ["Open", "High", "Low", "Close", "Adj Close", "Volume"]


def yahoo_frame(tickers: list[str], start: str, end: str | None, failed=(), flat: bool = False) -> pd.DataFrame:
    """What yfinance.download(tickers, group_by="column", auto_adjust=False) returns: business days from start to
    end (exclusive), columns (Price, Ticker) sorted by price name; a failed ticker's columns are all NaN."""
    days = pd.bdate_range(start, pd.Timestamp(end or "2024-01-12") - pd.Timedelta(days=1), name="Date")
    frames = {}
    for ticker in tickers:
        k = ["AAPL", "MSFT", "KO", "^GSPC"].index(ticker) if ticker in ("AAPL", "MSFT", "KO", "^GSPC") else 4
        close = 100 + 10 * k + np.asarray((days - pd.Timestamp("2024-01-02")).days, dtype=float)  # set by the date
        one = pd.DataFrame({"Open": close - 0.5, "High": close + 1, "Low": close - 1, "Close": close,
                            "Adj Close": close * 0.98, "Volume": 1e6 + k}, index=days)  # fmt: skip
        frames[ticker] = one.iloc[:0].reindex(days) if ticker in failed else one
    data = pd.concat(frames.values(), axis=1, sort=True, keys=frames.keys(), names=["Ticker", "Price"])
    data.columns = data.columns.swaplevel(0, 1)
    data = data.sort_index(level=0, axis=1)
    if flat:  # multi_level_index=False with one ticker
        data = data.droplevel(1, axis=1).rename_axis(None, axis=1)
    return data


@pytest.fixture
def downloads(monkeypatch):
    """Replace the network call; record what was asked."""
    calls: list[tuple[list[str], str, str | None]] = []

    def fake(tickers, start, end, failed=("NOPE",)):
        calls.append((list(tickers), start, end))
        return yahoo_frame(list(tickers), start, end, failed=failed)

    monkeypatch.setattr(collecting, "_download", fake)
    return calls


def test_a_long_file_of_every_ticker_that_returned_prices_and_one_line_for_the_others(downloads, tmp_path, caplog):
    out = tmp_path / "prices.csv"
    rows = collecting.collect(["AAPL", "NOPE", "^GSPC"], "2024-01-02", out, end="2024-01-06")
    assert downloads == [(["AAPL", "NOPE", "^GSPC"], "2024-01-02", "2024-01-06")]
    assert list(rows.columns) == collecting.COLUMNS and set(rows["symbol"]) == {"AAPL", "^GSPC"}
    assert "no data for NOPE" in caplog.text
    # the training config reads the file it wrote
    aapl = load_prices(out, date_column="date", symbol_column="symbol", symbol="AAPL", target="close")
    assert list(aapl.index) == list(pd.bdate_range("2024-01-02", "2024-01-05"))
    assert aapl["close"].tolist() == [100.0, 101.0, 102.0, 103.0]  # 2024-01-02 .. 05


def test_one_ticker_in_a_flat_frame_reads_the_same(tmp_path):
    flat = yahoo_frame(["MSFT"], "2024-01-02", "2024-01-06", flat=True)
    nested = yahoo_frame(["MSFT"], "2024-01-02", "2024-01-06")
    a, missing = collecting.to_long(flat, ["MSFT"])
    b, _ = collecting.to_long(nested, ["MSFT"])
    assert not missing and a.equals(b) and len(a) == 4 and a["adj close"].iloc[0] == pytest.approx(110 * 0.98)


def test_a_second_call_fetches_only_the_days_from_the_last_stored_one(downloads, tmp_path):
    out = tmp_path / "prices.csv"
    collecting.collect(["AAPL", "MSFT"], "2024-01-02", out, end="2024-01-06")
    # a week later, with a new ticker: stored tickers from their last stored bar (the overlap checks it), the new
    # one from start
    rows = collecting.collect(["AAPL", "MSFT", "KO"], "2024-01-02", out, end="2024-01-13")
    assert downloads[1:] == [(["KO"], "2024-01-02", "2024-01-13"), (["AAPL", "MSFT"], "2024-01-05", "2024-01-13")]
    assert rows.groupby("symbol").size().to_dict() == {"AAPL": 9, "KO": 9, "MSFT": 9}
    assert not rows.duplicated(["date", "symbol"]).any() and rows.equals(collecting.read_stored(out))
    # up to date: only the last stored day is fetched again, and nothing changes
    again = collecting.collect(["AAPL", "MSFT", "KO"], "2024-01-02", out, end="2024-01-13")
    assert downloads[3:] == [(["AAPL", "MSFT", "KO"], "2024-01-12", "2024-01-13")] and again.equals(rows)


def test_a_history_yahoo_re_adjusted_since_is_fetched_again_whole(monkeypatch, tmp_path):
    calls = []

    def fake(tickers, start, end, dividend=False):
        calls.append((list(tickers), start))
        frame = yahoo_frame(list(tickers), start, end)
        if len(calls) > 1:  # a dividend since the first download: Yahoo scales every adjusted close by 0.99
            frame.loc[:, ("Adj Close", slice(None))] *= 0.99
        return frame

    monkeypatch.setattr(collecting, "_download", fake)
    out = tmp_path / "prices.csv"
    collecting.collect(["AAPL"], "2024-01-02", out, end="2024-01-06")
    rows = collecting.collect(["AAPL"], "2024-01-02", out, end="2024-01-13")
    assert calls == [(["AAPL"], "2024-01-02"), (["AAPL"], "2024-01-05"), (["AAPL"], "2024-01-02")]
    # one adjusted series, not two scales stitched together
    assert rows["adj close"].to_numpy() == pytest.approx(rows["close"].to_numpy() * 0.98 * 0.99)


def test_an_update_that_fetches_nothing_fails_and_keeps_the_file(monkeypatch, downloads, tmp_path):
    out = tmp_path / "prices.csv"
    collecting.collect(["AAPL"], "2024-01-02", out, end="2024-01-06")
    before = out.read_bytes()
    monkeypatch.setattr(collecting, "_download", lambda t, s, e: yahoo_frame(t, s, e, failed=set(t)))  # offline
    with pytest.raises(UserError, match=r"no data for any of AAPL .* left as it was"):
        collecting.collect(["AAPL"], "2024-01-02", out, end="2024-01-13")
    assert out.read_bytes() == before


def test_tickers_that_all_return_nothing_are_an_error_and_nothing_is_written(monkeypatch, tmp_path):
    monkeypatch.setattr(collecting, "_download", lambda t, s, e: yahoo_frame(t, s, e, failed=set(t)))
    with pytest.raises(UserError, match=r"no data for any of ZZZZ, QQQQ .* nothing written"):
        collecting.collect(["ZZZZ", "QQQQ"], "2024-01-02", tmp_path / "p.csv", end="2024-01-06")
    assert not (tmp_path / "p.csv").exists()


def test_parquet_without_pyarrow_is_one_line_before_any_download(monkeypatch, downloads, tmp_path):
    monkeypatch.setattr(collecting, "find_spec", lambda name: None)  # as on an install without .[parquet]
    with pytest.raises(UserError, match=r"Parquet needs pyarrow: pip install -e '.\[parquet\]', or give out="):
        collecting.collect(["AAPL"], "2024-01-02", tmp_path / "p.parquet")
    assert downloads == []


def test_a_collected_file_is_a_panel_one_model_trains_on(downloads, tmp_path):
    from pricernn.data import PriceDataModule

    out = tmp_path / "prices.csv"
    collecting.collect(["AAPL", "MSFT", "KO"], "2023-10-02", out, end="2024-01-06")
    dm = PriceDataModule(path=str(out), date_column="date", symbol_column="symbol", symbols="all",
                         target="adj close", window=20)  # fmt: skip
    dm.setup()
    first = dict(zip(dm.series.symbols, dm.series.levels[dm.series.offsets[:-1]], strict=True))
    # each series its own adjusted closes, from 2023-10-02 (92 days before the fake's base date)
    assert first == pytest.approx({"AAPL": 8 * 0.98, "MSFT": 18 * 0.98, "KO": 28 * 0.98})
