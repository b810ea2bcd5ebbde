import logging

import numpy as np
import pandas as pd
import pytest

from pricernn import UserError
from pricernn.data import PriceDataModule, load_prices


def test_embedded_dataset_loads_whole(sp500):
    assert len(sp500) == 5031
    assert list(sp500.columns) == ["Open", "High", "Low", "Close", "Adj Close", "Volume"]
    assert sp500.index[0] == pd.Timestamp("1999-01-04") and sp500.index[-1] == pd.Timestamp("2018-12-31")
    assert sp500["Close"].iloc[-1] == pytest.approx(2506.850098)
    assert not sp500.isna().any().any()


def test_user_csv_with_features_and_parquet(sp500, write_csv, tmp_path):
    path = write_csv(sp500.iloc[:400])
    frame = load_prices(path, features=["Open", "Volume"], target="Close")
    assert list(frame.columns) == ["Open", "Volume", "Close"]
    pq = tmp_path / "prices.parquet"
    sp500.iloc[:400].reset_index().rename(columns={"date": "Date"}).to_parquet(pq)
    pd.testing.assert_frame_equal(load_prices(pq), load_prices(path), check_freq=False)


def test_long_format_symbol_selection(sp500, write_csv):
    close = sp500["Close"].iloc[:300]
    long = pd.concat(
        [
            pd.DataFrame({"symbol": s, "day": close.index, "price": close.to_numpy() * k})
            for s, k in (("AAPL", 1.0), ("MSFT", 2.0))
        ]
    )
    path = write_csv(long.assign(Date=long["day"]).drop(columns="day"), "long.csv")
    frame = load_prices(path, target="price", symbol_column="symbol", symbol="MSFT")
    assert len(frame) == 300 and frame["price"].iloc[0] == pytest.approx(2 * close.iloc[0])
    with pytest.raises(UserError, match=r"no rows for data.symbol=TSLA .* AAPL, MSFT"):
        load_prices(path, target="price", symbol_column="symbol", symbol="TSLA")
    with pytest.raises(UserError, match=r"no symbol \(data.symbol_column\) column 'ticker'"):
        load_prices(path, target="price", symbol_column="ticker", symbol="MSFT")


def test_unsorted_and_duplicated_dates_are_handled_with_a_count(sp500, write_csv, caplog):
    part = sp500[["Close"]].iloc[:50]
    shuffled = pd.concat([part.iloc[25:], part.iloc[:25], part.iloc[[3, 7]] * 2])
    path = write_csv(shuffled)
    with caplog.at_level(logging.WARNING, logger="pricernn"):
        frame = load_prices(path)
    assert frame.index.is_monotonic_increasing and len(frame) == 50
    assert frame["Close"].iloc[3] == pytest.approx(2 * part["Close"].iloc[3])  # the last duplicate is kept
    assert "2 rows repeat an earlier date" in caplog.text and "not in order" in caplog.text


def test_several_series_without_symbol_column_are_refused(sp500, write_csv):
    """Interleaved tickers would silently train as one zig-zag series; a few repeated dates only warn (above)."""
    close = sp500["Close"].iloc[:300]
    long = pd.concat(
        pd.DataFrame({"Date": close.index, "ticker": s, "exchange": "XNAS", "Close": close.to_numpy() * k})
        for s, k in (("MSFT", 1.0), ("GOOGL", 2.0), ("AAPL", 3.0), ("AMZN", 4.0))
    ).sort_values("Date", kind="stable")
    expected = r"long.csv: 4 rows per date \(e.g. 1999-01-04\); set data.symbol_column=ticker and data.symbol=one of "
    with pytest.raises(UserError, match=expected + "AAPL, AMZN, GOOGL, MSFT$"):
        load_prices(write_csv(long, "long.csv"))
    with pytest.raises(UserError, match=r"long.csv: 4 rows per date .*several series; set data.symbol_column"):
        load_prices(write_csv(long.drop(columns="ticker"), "long.csv"))
    minutes = long.drop(columns="ticker").assign(Time=np.tile(["09:30", "09:31", "09:32", "09:33"], 300))
    with pytest.raises(UserError, match=r"4 rows per date .*: the time of day is in column 'Time'; join it to the"):
        load_prices(write_csv(minutes, "long.csv"))
    chosen = load_prices(write_csv(long, "long.csv"), symbol_column="ticker", symbol="GOOGL")
    np.testing.assert_allclose(chosen["Close"], 2 * close.to_numpy())


@pytest.mark.parametrize("method", ["ffill", "interpolate", "drop"])
def test_missing_values_are_filled(sp500, write_csv, method):
    part = sp500[["Close"]].iloc[:300].copy()
    part.iloc[[10, 11, 150], 0] = np.nan
    dm = PriceDataModule(path=str(write_csv(part)), fill=method, window=10)
    dm.setup()
    assert len(dm.series.levels) == (297 if method == "drop" else 300)
    assert np.isfinite(dm.series.levels).all()
    if method == "ffill":
        assert dm.series.levels[10] == dm.series.levels[11] == dm.series.levels[9]


# --- bad input: one UserError naming the file, column, row or option ------------------------------------------


def _bad_cases(sp500, tmp_path, write_csv):
    good = sp500[["Close"]].iloc[:300]
    text = good.reset_index().rename(columns={"date": "Date"}).astype({"Close": object})
    text.loc[16, "Close"] = "n/a?"
    inf = good.copy()
    inf.iloc[20, 0] = np.inf
    empty_col = good.assign(Close=np.nan)
    bad_date = good.reset_index().rename(columns={"date": "Date"}).astype({"Date": str})
    bad_date.loc[5, "Date"] = "someday"
    negative = good.copy()
    negative.iloc[30, 0] = -1.0
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "binary.csv").write_bytes(bytes(range(256)) * 8)
    (tmp_path / "header_only.csv").write_text("Date,Close\n")
    return {
        "missing": ({"path": str(tmp_path / "nope.csv")}, r"nope.csv: no such file"),
        "directory": ({"path": str(tmp_path)}, r"is a directory"),
        "empty": ({"path": str(tmp_path / "empty.csv")}, r"empty.csv: the file is empty"),
        "binary": ({"path": str(tmp_path / "binary.csv")}, r"binary.csv: looks like a binary file"),
        "header only": ({"path": str(tmp_path / "header_only.csv")}, r"has a header but no data rows"),
        "target column": (
            {"path": str(write_csv(good)), "target": "Price"},
            r"no target \(data.target\) column 'Price'; the columns are: Date, Close",
        ),
        "feature column": ({"path": str(write_csv(good)), "features": ["Close", "Vol"]}, r"column 'Vol'"),
        "date column": ({"path": str(write_csv(good)), "date_column": "Day"}, r"no date .* column 'Day'"),
        "text": (
            {"path": str(write_csv(text, "text.csv"))},
            r"text.csv: column 'Close' has text 'n/a\?' at line 18 \(Date 1999-01-27",
        ),
        "inf": ({"path": str(write_csv(inf, "inf.csv"))}, r"column 'Close' has an infinite value at line 22"),
        "nan only": ({"path": str(write_csv(empty_col, "nan.csv"))}, r"column 'Close' has no numbers"),
        "date": ({"path": str(write_csv(bad_date, "dates.csv"))}, r"unparseable date 'someday' at line 7"),
        "non-positive": (
            {"path": str(write_csv(negative, "neg.csv")), "target_transform": "log_return", "scaler": "standard"},
            r"column 'Close' has the non-positive value -1 on 1999-02-17",
        ),
        "too short": (
            {"path": str(write_csv(good.iloc[:80], "short.csv")), "window": 60},
            r"80 rows, too short for data.window=60 .* needs at least 87 rows",
        ),
        "split": ({"split": [0.9, 0.1, 0.0]}, r"data.split=.* three positive fractions"),
        "fill": ({"fill": "mean"}, r"unknown data.fill=mean; choose one of: ffill, interpolate, drop"),
        "scaler": ({"scaler": "robust"}, r"unknown data.scaler=robust"),
        "transform": ({"target_transform": "diff"}, r"unknown data.target_transform=diff"),
        "window": ({"window": 0}, r"data.window=0 must be at least 1"),
        "horizon": ({"horizon": -2}, r"data.horizon=-2 must be at least 1"),
        "window on returns": (  # an explicit contradictory choice (left out, the scaler follows the transform)
            {"target_transform": "log_return", "scaler": "window"},
            r"data.scaler=window .*target_transform=log_return use data.scaler=standard",
        ),
    }


BAD_CASES = [
    "missing",
    "directory",
    "empty",
    "binary",
    "header only",
    "target column",
    "feature column",
    "date column",
    "text",
    "inf",
    "nan only",
    "date",
    "non-positive",
    "too short",
    "split",
    "fill",
    "scaler",
    "transform",
    "window",
    "horizon",
    "window on returns",
]


@pytest.mark.parametrize("case", BAD_CASES)
def test_every_bad_input_names_the_culprit(sp500, tmp_path, write_csv, case):
    kwargs, message = _bad_cases(sp500, tmp_path, write_csv)[case]
    with pytest.raises(UserError, match=message):
        PriceDataModule(**kwargs).setup()


def test_the_embedded_stock_panel_reads_one_stock_by_its_column():
    aapl = load_prices("sp500_stocks", target="AAPL")
    assert len(aapl) == 8313 and list(aapl.columns) == ["AAPL"]
    assert (aapl.index[0], aapl.index[-1]) == (pd.Timestamp("1990-01-02"), pd.Timestamp("2022-12-28"))
    assert aapl["AAPL"].iloc[-1] == pytest.approx(125.674)  # skfolio's file, byte for byte
