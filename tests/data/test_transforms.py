import numpy as np
import pandas as pd
import pytest
import torch

from pricernn.data import Normalizer, PriceDataModule
from pricernn.data.preprocess import encode, split_rows, window_starts
from pricernn.data.windows import WindowDataset


def _all_windows(series, val_row, test_row, window, horizon, normalizer):
    starts = window_starts(len(series.dates), window, horizon, val_row, test_row)
    ds = WindowDataset(
        *(torch.tensor(a, dtype=torch.float64) for a in (series.inputs, series.target, series.levels)),
        range(starts["test"][0], starts["test"][-1] + 1),
        window,
        horizon,
        normalizer,
    )
    return ds[list(range(len(ds)))], starts["test"]


@pytest.mark.parametrize(
    ("scaler", "transform"),
    [
        ("window", "price"),
        ("standard", "price"),
        ("minmax", "price"),
        ("none", "price"),
        ("standard", "log_return"),
        ("minmax", "log_return"),
    ],
)
def test_inverse_round_trips_to_prices(sp500, scaler, transform):
    prices = sp500[["Close", "Volume"]].iloc[:800]
    series = encode(prices, ["Close", "Volume"], "Close", transform)
    window, horizon = 20, 4
    val_row, test_row = split_rows(series.dates, window, horizon)
    normalizer = Normalizer.fit(series, val_row, window, horizon, scaler)
    (x, y, ctx), starts = _all_windows(series, val_row, test_row, window, horizon, normalizer)
    back = normalizer.to_price(y, ctx).numpy()
    rows = starts[:, None] + window + np.arange(horizon)
    np.testing.assert_allclose(back, series.levels[rows], rtol=1e-6)
    # and through the plain-data state a checkpoint stores
    again = Normalizer.from_dict(normalizer.to_dict())
    assert again == normalizer


@pytest.mark.parametrize("scaler", ["window", "standard", "minmax"])
def test_fitted_statistics_see_only_the_training_period(sp500, scaler):
    prices = sp500[["Close"]].iloc[:1000]
    window, horizon = 30, 2
    series = encode(prices, ["Close"], "Close", "price")
    val_row, _ = split_rows(series.dates, window, horizon)
    fitted = Normalizer.fit(series, val_row, window, horizon, scaler)
    changed = prices.copy()
    changed.iloc[val_row:, 0] *= 3.0  # a wildly different future
    refit = Normalizer.fit(encode(changed, ["Close"], "Close", "price"), val_row, window, horizon, scaler)
    assert refit == fitted
    # while a change inside the training period does change the fit
    early = prices.copy()
    early.iloc[val_row - 50 : val_row, 0] *= 1.5
    assert Normalizer.fit(encode(early, ["Close"], "Close", "price"), val_row, window, horizon, scaler) != fitted


def test_standard_scaler_statistics_are_the_training_mean_and_std(sp500):
    dm = PriceDataModule(scaler="standard", window=10)
    dm.setup()
    train_rows = sp500["Close"].iloc[: int(round(0.7 * len(sp500)))]
    assert dm.normalizer.y_loc == pytest.approx(train_rows.mean())
    assert dm.normalizer.y_scale == pytest.approx(train_rows.std(ddof=0))


def test_window_scaler_inputs_are_relative_moves(sp500):
    dm = PriceDataModule(window=5)
    dm.setup()
    x, _, ctx = dm.datasets["test"][[0]]
    start = int(dm.datasets["test"].starts[0])
    closes = sp500["Close"].to_numpy()[start : start + 5]
    expected = (closes / closes[-1] - 1) / dm.normalizer.x_scale[0]
    np.testing.assert_allclose(x[0, :, 0].numpy(), expected, rtol=1e-4, atol=1e-5)
    assert ctx[0, 0].item() == pytest.approx(closes[-1])


def test_split_by_dates_and_by_fractions(sp500):
    dates = sp500.index
    val_row, test_row = split_rows(dates, 60, 1)
    assert (val_row, test_row) == (round(0.7 * 5031), round(0.7 * 5031) + round(0.15 * 5031))
    val_row, test_row = split_rows(dates, 60, 1, val_start="2012-01-01", test_start="2015-06-01")
    assert dates[val_row] == pd.Timestamp("2012-01-03") and dates[val_row - 1] < pd.Timestamp("2012-01-01")
    assert dates[test_row] == pd.Timestamp("2015-06-01")
    dm = PriceDataModule(val_start="2012-01-01", test_start="2015-06-01")
    dm.setup()
    assert dm.split_dates["test"][0] == "2015-06-01"
    assert dm.split_dates["train"][1] < "2012-01-01" <= dm.split_dates["val"][0]
