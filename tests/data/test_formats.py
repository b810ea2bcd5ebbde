"""Real-world file formats: slices of the embedded S&P 500 written as brokers, sites and APIs write them, read back."""

import json
import logging
import sys

import numpy as np
import pandas as pd
import pytest

from pricernn import UserError
from pricernn.data import PriceDataModule, load_prices

COLUMNS = ["Open", "High", "Low", "Close", "Adj Close", "Volume"]


def _iso(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.reset_index().rename(columns={"date": "Date"})


def _german(values: pd.Series) -> pd.Series:
    """2575.21 -> '2.575,21'."""
    return values.map("{:,.2f}".format).str.translate(str.maketrans(",.", ".,"))


def _info(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "pricernn" and r.levelno == logging.INFO]


@pytest.fixture
def part(sp500) -> pd.DataFrame:
    return sp500.iloc[-300:]  # 2017-10-20 .. 2018-12-31


def _write_german(part: pd.DataFrame, path) -> None:
    german = pd.DataFrame(
        {
            "Datum": part.index.strftime("%d.%m.%Y"),
            "Eröffnung": _german(part["Open"]),
            "Schlusskurs": _german(part["Close"]),
            "Umsatz": part["Volume"].astype("int64"),
            "Börse": "XETRA",
        }
    )
    german.to_csv(path, sep=";", index=False)


def test_european_csv(part, tmp_path, caplog):
    path = tmp_path / "dax.csv"
    _write_german(part, path)
    with caplog.at_level(logging.INFO, logger="pricernn"):
        frame = load_prices(path, date_column="Datum", target="Schlusskurs", features=["Eröffnung", "Umsatz"])
    assert (frame.index == part.index).all()
    np.testing.assert_allclose(frame["Schlusskurs"], part["Close"].round(2), rtol=0, atol=1e-9)
    np.testing.assert_array_equal(frame["Umsatz"], part["Volume"])
    assert _info(caplog) == ["dax.csv: separator ';', decimal ',', thousands '.', dates day-first (%d.%m.%Y)"]


def test_a_wrong_override_names_the_option_that_reads_the_file(part, tmp_path):
    path = tmp_path / "dax.csv"
    _write_german(part, path)
    expected = (
        r"dax.csv: column 'Schlusskurs' has text '2.575,21' at line 2 \(Datum 20.10.2017\): read with decimal '.', "
        r"it looks like decimal comma; set data.decimal=',' and data.thousands='.'$"
    )
    with pytest.raises(UserError, match=expected):
        load_prices(path, date_column="Datum", target="Schlusskurs", decimal=".")
    with pytest.raises(UserError, match=r"column 'Datum' has an unparseable date '20.10.2017' at line 2"):
        load_prices(path, date_column="Datum", target="Schlusskurs", date_format="%Y-%m-%d")


def test_numbers_no_value_explains_follow_the_separator_and_say_so(part, tmp_path, caplog):
    """'128,761' is 128.761 in a ';' file (decimal-comma locales) and '2,575' is 2575 in a ',' file."""
    yen = part["Close"].div(20).round(3)
    yen = yen.where(yen.map("{:.3f}".format).str[-1] != "0", yen + 0.001)  # exactly three decimals everywhere
    path = tmp_path / "yen.csv"
    pd.DataFrame({"Date": part.index, "Close": yen.map("{:.3f}".format).str.replace(".", ",")}).to_csv(
        path, sep=";", index=False
    )
    with caplog.at_level(logging.INFO, logger="pricernn"):
        np.testing.assert_allclose(load_prices(path)["Close"], yen, atol=1e-9)
    assert "decimal ',' (assumed: no value tells; set data.decimal)" in _info(caplog)[0]
    path = tmp_path / "whole.csv"
    pd.DataFrame({"Date": part.index, "Close": part["Close"].round().map("{:,.0f}".format)}).to_csv(path, index=False)
    np.testing.assert_array_equal(load_prices(path)["Close"], part["Close"].round())
    # but '128.761' in a ';' file may be 128.761 or 128761: a thousandfold error is refused, not assumed
    path = tmp_path / "dots.csv"
    pd.DataFrame({"Date": part.index, "Close": yen.map("{:.3f}".format)}).to_csv(path, sep=";", index=False)
    with pytest.raises(
        UserError, match=r"dots.csv: column 'Close' holds numbers like '.*', which read as dot decimals"
    ):
        load_prices(path)
    np.testing.assert_allclose(load_prices(path, decimal=".")["Close"], yen, atol=1e-9)


def test_investing_com_newest_first_with_suffixes(part, tmp_path, caplog):
    newest_first = part.iloc[::-1]
    change = part["Close"].pct_change().mul(100).iloc[::-1]
    site = pd.DataFrame(
        {
            "Date": newest_first.index.strftime("%b %d, %Y"),
            "Price": newest_first["Close"].map("{:,.2f}".format),
            "Open": newest_first["Open"].map("{:,.2f}".format),
            "Vol.": newest_first["Volume"].div(1e9).map("{:.2f}B".format),
            "Change %": change.map("{:.2f}%".format).where(change.notna(), "-"),
        }
    )
    path = tmp_path / "S&P 500 Historical Data.csv"
    site.to_csv(path, index=False, quoting=1)  # every field quoted, as the site does
    with caplog.at_level(logging.INFO, logger="pricernn"):
        frame = load_prices(path, target="Price", features=["Open", "Vol.", "Change %"])
    assert (frame.index == part.index).all()
    np.testing.assert_allclose(frame["Price"], part["Close"].round(2), atol=1e-9)
    np.testing.assert_allclose(frame["Vol."], part["Volume"].div(1e9).round(2) * 1e9, rtol=1e-12)
    np.testing.assert_allclose(frame["Change %"].iloc[1:], change.iloc[::-1].iloc[1:].round(2), atol=1e-9)
    assert np.isnan(frame["Change %"].iloc[0])  # the site's '-'
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert _info(caplog) == [
        "S&P 500 Historical Data.csv: separator ',', decimal '.', thousands ',', dates like 'Dec 31, 2018' "
        "(%b %d, %Y), K/M/B in 'Vol.', % in 'Change %', newest row first: sorted oldest first"
    ]


def test_yahoo_csv_with_adj_close_nulls_and_unneeded_text(part, tmp_path):
    yahoo = _iso(part).astype({c: object for c in COLUMNS})
    yahoo.loc[7, COLUMNS] = "null"  # Yahoo's missing day
    yahoo["Comment"] = "not a number, never parsed"
    path = tmp_path / "^GSPC.csv"
    yahoo.to_csv(path, index=False)
    frame = load_prices(path, target="Adj Close", features=["Open", "Volume"])
    expected = part[["Open", "Volume", "Adj Close"]].copy()
    expected.iloc[7] = np.nan
    pd.testing.assert_frame_equal(frame, expected, check_freq=False)


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_epoch_timestamps_by_magnitude(part, tmp_path, unit):
    """Binance klines: open_time in milliseconds (microseconds in newer dumps); other APIs use seconds."""
    stamps = part.index.as_unit("ns").asi8 // {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}[unit]
    klines = pd.DataFrame({"open_time": stamps, "open": part["Open"], "close": part["Close"]})
    path = tmp_path / "BTCUSDT-1d.csv"
    klines.assign(close_time=stamps + 1).to_csv(path, index=False)
    frame = load_prices(path, date_column="open_time", target="close")
    assert (frame.index == part.index).all()
    np.testing.assert_array_equal(frame["close"], part["Close"])


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("prices.tsv", {"sep": "\t"}),
        ("prices.txt", {"sep": "|"}),
        ("prices.csv.gz", {}),
        ("prices.csv.zip", {}),
        ("prices.csv.bz2", {}),
        ("prices.csv.xz", {}),
    ],
)
def test_separators_and_compression(part, tmp_path, name, options):
    path = tmp_path / name
    _iso(part).to_csv(path, index=False, **options)
    pd.testing.assert_frame_equal(load_prices(path, features=COLUMNS), part, check_freq=False)


def test_parquet_with_zone_aware_stamps_and_text_numbers(part, tmp_path, caplog):
    """A named zone in the file: its wall clock (the exchange's) is kept."""
    stamps = (part.index + pd.Timedelta(hours=16)).tz_localize("America/New_York")
    path = tmp_path / "prices.parquet"
    pd.DataFrame({"Date": stamps, "Close": part["Close"].map("{:,.6f}".format).to_numpy()}).to_parquet(path)
    with caplog.at_level(logging.INFO, logger="pricernn"):
        frame = load_prices(path)
    assert (frame.index == part.index + pd.Timedelta(hours=16)).all()
    np.testing.assert_allclose(frame["Close"], part["Close"], rtol=1e-12)
    assert "America/New_York wall time" in _info(caplog)[0]


def test_excel_with_a_named_sheet(part, tmp_path, monkeypatch):
    pytest.importorskip("openpyxl")
    path = tmp_path / "prices.xlsx"
    with pd.ExcelWriter(path) as book:
        pd.DataFrame({"About": ["S&P 500 from the embedded data set"]}).to_excel(book, sheet_name="Notes")
        _iso(part).to_excel(book, sheet_name="Prices", index=False)
    pd.testing.assert_frame_equal(load_prices(path, sheet="Prices", features=COLUMNS), part, check_freq=False)
    pd.testing.assert_frame_equal(load_prices(path, sheet=1), part[["Close"]], check_freq=False)
    with pytest.raises(UserError, match=r"prices.xlsx: no sheet 'Kurse' \(data.sheet\); the sheets are: Notes, Prices"):
        load_prices(path, sheet="Kurse")
    monkeypatch.setitem(sys.modules, "openpyxl", None)  # as if it were not installed
    with pytest.raises(UserError, match=r"prices.xlsx: reading .xlsx files needs openpyxl \(pip install openpyxl\)"):
        load_prices(path, sheet="Prices")


def test_a_european_file_trains_end_to_end(part, tmp_path, compose_cfg):
    from pricernn.tasks.train import train

    path = tmp_path / "dax.csv"
    _write_german(part, path)
    overrides = ["data=csv", f"data.path={path}", "data.target=Schlusskurs", "data.date_column=Datum"]
    train(compose_cfg(*overrides, "debug=fast", "data.window=10"), tmp_path / "run")
    split_dates = json.loads((tmp_path / "run" / "metrics.json").read_text())["split_dates"]
    iso = tmp_path / "iso.csv"
    _iso(part).to_csv(iso, index=False)
    reference = PriceDataModule(path=str(iso), window=10)
    reference.setup()
    assert split_dates == {k: list(v) for k, v in reference.split_dates.items()}
    assert split_dates["train"][0].startswith("2017-11") and split_dates["test"][1] == "2018-12-31"
