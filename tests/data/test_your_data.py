"""Files as brokers, sites and APIs give them, trained end to end with only path, date column and target given:
the dates parsed, the bar frequency found, the split dates and the forecast dates are checked against known answers.
Prices are real (the embedded S&P 500); where a format needs other bar times (24/7, hourly) the stamps are made."""

import json

import pandas as pd
import pytest
import torch
from conftest import CONF_DIR

from pricernn.tasks.predict import forecast_history
from pricernn.tasks.train import train


def _investing(closes: pd.Series, path) -> None:
    """Investing.com: newest row first, 'Jan 02, 2018' dates, quoted prices with thousands separators, volume in
    millions with a suffix, a 'Change %' column."""
    frame = pd.DataFrame(
        {
            "Date": closes.index.strftime("%b %d, %Y"),
            "Price": closes.map("{:,.2f}".format),
            "Vol.": (closes / 1000).map("{:.2f}M".format),
            "Change %": (closes.pct_change().fillna(0) * 100).map("{:.2f}%".format),
        }
    )
    frame.iloc[::-1].to_csv(path, index=False, quoting=1)


def _klines(closes: pd.Series, path) -> None:
    """A crypto exchange's daily klines: open_time in epoch milliseconds, 7 days a week."""
    days = pd.date_range("2021-03-01", periods=len(closes), freq="D")
    ms = (days - pd.Timestamp("1970-01-01")) // pd.Timedelta(milliseconds=1)
    pd.DataFrame({"open_time": ms, "close": closes.to_numpy()}).to_csv(path, index=False)


def _fx_hourly(closes: pd.Series, path) -> None:
    """Hourly FX bars, tab-separated: Sunday 22:00 to Friday 21:00 (UTC), round the clock in between."""
    hours = pd.date_range("2023-01-01 22:00", periods=24 * 7 * 12, freq="h")
    week_hour = (hours.day_of_week * 24 + hours.hour + 2) % (24 * 7)  # hours since Sunday 22:00
    trading = hours[week_hour < 24 * 5]  # Sunday 22:00 .. Friday 21:00
    n = 10 * 24 * 5  # ten weeks: the last bar is Friday 2023-03-10 21:00
    rates = (closes.iloc[:n] / 2000).round(5)
    pd.DataFrame({"time": trading[:n].strftime("%Y-%m-%d %H:%M:%S"), "rate": rates.to_numpy()}).to_csv(
        path, sep="\t", index=False
    )


def _monthly_excel(closes: pd.Series, path) -> None:
    """Month-end closes in an Excel workbook, on a sheet named 'Monthly' after a notes sheet."""
    monthly = closes.groupby(closes.index.to_period("M")).last()
    frame = pd.DataFrame({"Month": monthly.index.to_timestamp("M").strftime("%Y-%m-%d"), "Close": monthly.to_numpy()})
    with pd.ExcelWriter(path) as book:
        pd.DataFrame({"note": ["S&P 500 month-end closes"]}).to_excel(book, sheet_name="Notes", index=False)
        frame.to_excel(book, sheet_name="Monthly", index=False)


# format -> writer, file name, data.* keys the user gives, the bar alias, the last bar, the next 3 bars
CASES = {
    "investing.com": (_investing, "SPX Historical Data.csv", ["data.date_column=Date", "data.target=Price"],
                      "B", "2018-12-31", ["2019-01-01", "2019-01-02", "2019-01-03"]),  # weekdays: no calendar
    "crypto klines": (_klines, "btc.csv", ["data.date_column=open_time", "data.target=close"],
                      "D", "2024-08-21", ["2024-08-22", "2024-08-23", "2024-08-24"]),  # weekends trade too
    "hourly fx": (_fx_hourly, "eurusd_h1.tsv", ["data.date_column=time", "data.target=rate"],
                  "h", "2023-03-10 21:00", ["2023-03-12 22:00", "2023-03-12 23:00", "2023-03-13 00:00"]),
    "monthly excel": (_monthly_excel, "spx.xlsx", ["data.date_column=Month", "data.sheet=Monthly"],
                      "ME", "2018-12-31", ["2019-01-31", "2019-02-28", "2019-03-31"]),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
def test_a_downloaded_file_trains_and_forecasts_the_next_bars(case, sp500, tmp_path, compose_cfg):
    write, name, keys, alias, last_bar, next_bars = CASES[case]
    closes = sp500["Close"].iloc[-1270:]  # 2014-01-02 .. 2018-12-31
    path = tmp_path / name
    write(closes, path)
    cfg = compose_cfg("data=csv", f"data.path={path}", *keys, "debug=fast", "data.window=6", "evaluation.steps=3")
    train(cfg, tmp_path / "run")

    recorded = json.loads((tmp_path / "run" / "metrics.json").read_text())["split_dates"]
    assert recorded["test"][1] == last_bar  # the real last bar, not a 1970 epoch or a misread day
    assert recorded["train"][0] < recorded["val"][0] < recorded["test"][0]
    contract = torch.load(tmp_path / "run" / "checkpoints" / "best.ckpt", weights_only=True)
    assert contract["hyper_parameters"]["transform"]["frequency"]["alias"] == alias

    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        predict = compose("predict", overrides=[f"ckpt={tmp_path / 'run' / 'checkpoints' / 'best.ckpt'}", "steps=3"])
    forecast = forecast_history(predict, tmp_path / "forecast")
    assert list(forecast.frame["date"]) == next_bars
    assert forecast.source == str(path)
