import logging

import numpy as np
import pandas as pd
import pytest
import torch

from pricernn import UserError
from pricernn.checkpoints import load_model
from pricernn.data import PriceDataModule
from pricernn.data.derived import PathInputs
from pricernn.data.frequency import infer_frequency
from pricernn.forecasting.multistep import recursive_forecast
from pricernn.models import RecurrentForecaster
from pricernn.tasks.predict import check_frequency, check_price_range


def _model(scaler: str, transform: str, horizon: int, window: int = 15) -> tuple[RecurrentForecaster, object]:
    dm = PriceDataModule(window=window, horizon=horizon, scaler=scaler, target_transform=transform)
    dm.setup()
    torch.manual_seed(0)
    model = RecurrentForecaster(1, horizon, cell="gru", hidden_size=6, num_layers=1, transform=dm.transform_state())
    return model.eval(), dm


def _by_hand(model, prices: np.ndarray, window: int, steps: int, transform: str) -> list[float]:
    """One step at a time with plain numpy: encode, normalise, run, decode, append."""
    n = model.normalizer
    history, out = list(prices), []
    while len(out) < steps:
        levels = np.array(history)
        z = np.diff(np.log(levels)) if transform == "log_return" else levels
        x = z[-window:]
        anchor = levels[-1]
        if n.scaler == "window":
            x_norm, loc, scale = (x - x[-1]) / (x[-1] * n.x_scale[0]), anchor, anchor * n.y_scale
        else:
            x_norm, loc, scale = (x - n.x_loc[0]) / n.x_scale[0], n.y_loc, n.y_scale
        with torch.no_grad():
            y = model(torch.tensor(x_norm, dtype=torch.float32)[None, :, None])[0].double().numpy()
        values = y * scale + loc
        new = anchor * np.exp(np.cumsum(values)) if transform == "log_return" else values
        take = list(new[: min(len(new), steps - len(out))])
        out += take
        history += take
    return out


@pytest.mark.parametrize(
    ("scaler", "transform", "horizon"),
    [("window", "price", 1), ("standard", "price", 1), ("standard", "log_return", 1), ("window", "price", 3)],
)
def test_recursive_forecast_equals_step_by_step_prediction(scaler, transform, horizon):
    window, steps = 15, 7
    model, dm = _model(scaler, transform, horizon, window)
    origins = [200, 900, 1500]  # three origins forecast in one batch
    series = dm.series
    inputs = torch.tensor(np.stack([series.inputs[o - window + 1 : o + 1] for o in origins]), dtype=torch.float32)
    last = torch.tensor(series.levels[origins], dtype=torch.float32)
    batched = recursive_forecast(model, inputs, last, steps).double().numpy()
    closes = PriceDataModule().prepare_series()[0].levels  # raw closes; a log-return series starts a day later
    offset = 1 if transform == "log_return" else 0
    for row, origin in enumerate(origins):
        expected = _by_hand(model, closes[: origin + offset + 1], window, steps, transform)
        np.testing.assert_allclose(batched[row], expected, rtol=2e-5)


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        ({"features": ["Open", "Close"]}, "reads Open, which it does not forecast"),
        ({"derived": ["log_return", "atr_14"]}, r"reads atr_14 \(from High, Low\), which it does not forecast"),
    ],
)
def test_recursion_beyond_horizon_needs_inputs_a_path_can_extend(settings, says):
    dm = PriceDataModule(window=10, **settings)
    dm.setup()
    model = RecurrentForecaster(dm.n_features, 1, hidden_size=4, num_layers=1, transform=dm.transform_state())
    x = torch.ones(1, 10, dm.n_features)
    assert recursive_forecast(model, x, torch.ones(1), 1).shape == (1, 1)
    advice = "give steps=1 or fewer, or train it with model.strategy=direct evaluation.steps=3"
    with pytest.raises(UserError, match=f"steps=3 needs recursion beyond the model's horizon .*{says}: {advice}"):
        recursive_forecast(model, x, torch.ones(1), 3)
    direct = RecurrentForecaster(dm.n_features, 2, hidden_size=4, num_layers=1, transform=dm.transform_state(),
                                 strategy="direct")  # fmt: skip
    with pytest.raises(UserError, match="give steps=2 or fewer, or train it with evaluation.steps=3$"):
        recursive_forecast(direct, x, torch.ones(1), 3)  # already direct: more of its horizons, not another strategy


def test_recursion_needs_the_target_itself_as_the_input_not_just_one_column():
    # one input column, but it is Volume: feeding the model its Close forecasts as volume would be nonsense
    dm = PriceDataModule(window=10, features=["Volume"], target="Close")
    dm.setup()
    model = RecurrentForecaster(1, 1, hidden_size=4, num_layers=1, transform=dm.transform_state())
    x = torch.ones(1, 10, 1)
    assert recursive_forecast(model, x, torch.ones(1), 1).shape == (1, 1)
    with pytest.raises(UserError, match=r"forecasts of Close; this one reads Volume, which it does not forecast"):
        recursive_forecast(model, x, torch.ones(1), 2)


def test_bad_checkpoints_name_the_file(tmp_path):
    with pytest.raises(UserError, match=r"ckpt=.*nope.ckpt: no such checkpoint file"):
        load_model(tmp_path / "nope.ckpt")
    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match=r"ckpt=.*junk.ckpt: not a readable checkpoint: damaged, or not written by"):
        load_model(tmp_path / "junk.ckpt")
    torch.save({"state_dict": {}}, tmp_path / "foreign.ckpt")
    with pytest.raises(UserError, match=r"ckpt=.*foreign.ckpt: not a pricernn checkpoint"):
        load_model(tmp_path / "foreign.ckpt")
    with pytest.raises(UserError, match=r"ckpt=.*: is a directory; give a checkpoint file, e.g. .*best.ckpt"):
        load_model(tmp_path)


def test_predict_cli_forecasts_the_series_the_model_was_trained_on(run_script, tmp_path, sp500):
    # a user's own file, with its own column names, at its own price level (the S&P 500 / 25), ending on the
    # Friday before Christmas 2000
    mine = (sp500[["Close"]].loc[:"2000-12-22"] / 25).rename(columns={"Close": "Price"}).rename_axis("Day")
    mine.reset_index().to_csv(tmp_path / "mine.csv", index=False)
    trained = run_script("train.py", "data=csv", "data.path=mine.csv", "data.date_column=Day", "data.target=Price",
                         "data.calendar=XNYS", "debug=fast", "data.window=10")  # fmt: skip
    assert trained.returncode == 0, trained.stderr[-2000:]
    (ckpt,) = (tmp_path / "outputs" / "runs").glob("*/checkpoints/best.ckpt")

    result = run_script("predict.py", f"ckpt={ckpt}", "steps=6")  # nothing but the checkpoint
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"6-step forecast of Price in {tmp_path / 'mine.csv'}, after its last bar 2000-12-22 (last" in result.stdout
    (out,) = (tmp_path / "outputs" / "forecasts").iterdir()
    forecast = pd.read_csv(out / "forecast.csv")
    assert set(forecast["source"]) == {str(tmp_path / "mine.csv")} and set(forecast["target"]) == {"Price"}
    last = mine["Price"].iloc[-1]
    assert ((forecast["predicted"] > 0.8 * last) & (forecast["predicted"] < 1.2 * last)).all()  # ~53, not ~1,300
    # the bands as calibrated at training time: ordered, nested, widening with the horizon
    bands = forecast[["lower_95", "lower_80", "predicted", "upper_80", "upper_95"]].to_numpy()
    assert (np.diff(bands, axis=1) >= 0).all() and (bands[:, 0] < bands[:, -1]).all()
    for level in ("80", "95"):
        assert (np.diff(np.log(forecast[f"upper_{level}"] / forecast[f"lower_{level}"])) >= -1e-12).all()
    # the exchange's sessions: Christmas Day and New Year's Day are skipped
    assert list(forecast["date"]) == ["2000-12-26", "2000-12-27", "2000-12-28", "2000-12-29", "2001-01-02",
                                      "2001-01-03"]  # fmt: skip
    assert (out / "forecast.png").stat().st_size > 10_000
    assert not [f for f in out.iterdir() if ".tmp" in f.name]  # written whole, then renamed

    # data.path replaces the file, key by key: the column names still come from the checkpoint
    later = (sp500[["Close"]].iloc[:700] / 25).rename(columns={"Close": "Price"}).rename_axis("Day")
    later.reset_index().to_csv(tmp_path / "later.csv", index=False)
    result = run_script("predict.py", f"ckpt={ckpt}", "steps=2", "data.path=later.csv")
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"in {tmp_path / 'later.csv'}, after its last bar {later.index[-1].date()} (last" in result.stdout

    # a file without the checkpoint's columns: the catalogue's "ckpt columns" case (test_reliability.py)


def _contract(scaler: str, alias: str = "B", per_year: float = 252) -> dict:
    normalizer = {"scaler": scaler, "log_return": False}
    frequency = {"alias": alias, "periods_per_year": per_year, "label": "business daily", "slots": []}
    return {"target": "Close", "normalizer": normalizer, "train_range": [40.0, 60.0], "frequency": frequency}


def test_a_history_far_from_the_training_prices_warns_or_fails_by_what_the_model_reads(caplog):
    day = pd.Timestamp("2020-01-02")
    check_price_range(_contract("window"), 250.0, day, "x.csv")  # within 5x of 60: nothing to say
    with caplog.at_level(logging.WARNING, logger="pricernn"):
        check_price_range(_contract("window"), 2500.0, day, "x.csv")  # relative moves: still a forecast
    assert "x.csv: the last Close price, 2500 on 2020-01-02, is outside 0.2x-5x of the training range" in caplog.text
    with pytest.raises(UserError, match=r"a model of price levels \(data.scaler=standard\) cannot forecast there"):
        check_price_range(_contract("standard"), 2500.0, day, "x.csv")
    # a level model cannot reach any price outside what it saw in training: 61 when it saw 40 .. 60
    with pytest.raises(UserError, match=r"61 on 2020-01-02, is outside the training range \(40 .. 60\)"):
        check_price_range(_contract("minmax"), 61.0, day, "x.csv")
    check_price_range(_contract("none"), 59.0, day, "x.csv")


def test_a_history_of_other_bars_than_the_model_knew_is_refused(caplog):
    hourly = infer_frequency(pd.date_range("2024-01-01", periods=200, freq="h"))
    with pytest.raises(UserError, match=r"x.csv: its bars are hourly \(h\), the model's were business daily \(B\)"):
        check_frequency(_contract("window"), hourly, "x.csv")
    # daily dates read as hourly bars (data.freq=h): about as many bars a year as business days, yet an hour long
    misread = infer_frequency(pd.bdate_range("2024-01-01", periods=200), "h")
    with pytest.raises(UserError, match=r"its bars are hourly \(h\)"):
        check_frequency(_contract("window"), misread, "x.csv")
    monthly = infer_frequency(pd.date_range("2010-01-31", periods=60, freq="ME"))
    with pytest.raises(UserError, match=r"its bars are monthly \(month end\) \(ME\)"):
        check_frequency(_contract("window", "W-FRI", 52), monthly, "x.csv")
    crypto = infer_frequency(pd.date_range("2024-01-01", periods=60, freq="D"))
    with caplog.at_level(logging.WARNING, logger="pricernn"):
        check_frequency(_contract("window"), crypto, "x.csv")  # daily either way: a warning
    assert "its bars are daily, 7 days a week (D)" in caplog.text


def test_a_checkpoint_reads_a_new_file_with_the_day_order_its_training_file_proved(sp500, tmp_path, compose_cfg):
    from conftest import CONF_DIR
    from hydra import compose, initialize_config_dir

    from pricernn.tasks.predict import forecast_history
    from pricernn.tasks.train import train

    closes = sp500[["Close"]].iloc[:600]
    us = closes.set_axis(closes.index.strftime("%m/%d/%Y")).rename_axis("Date").reset_index()
    us.to_csv(tmp_path / "us.csv", index=False)  # 01/19/1999: month-first, proved by days above 12
    early = closes.loc["2001-05-01":"2001-05-12"]  # every day <= 12: alone, 05/01 reads both ways
    early.set_axis(early.index.strftime("%m/%d/%Y")).rename_axis("Date").reset_index().to_csv(
        tmp_path / "may.csv", index=False
    )
    train(compose_cfg("data=csv", f"data.path={tmp_path / 'us.csv'}", "debug=fast", "data.window=5"), tmp_path / "run")
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        overrides = [f"ckpt={tmp_path / 'run/checkpoints/best.ckpt'}", "steps=1", f"data.path={tmp_path / 'may.csv'}"]
        cfg = compose("predict", overrides)
    forecast = forecast_history(cfg, tmp_path / "out", {"path"})
    assert forecast.last_bar == "2001-05-11"  # a Friday in May, not the 5th of November


@pytest.mark.parametrize(("scaler", "transform"), [("window", "price"), ("standard", "log_return")])
def test_a_recursive_forecast_feeds_each_new_bar_the_inputs_the_file_would_give_it(scaler, transform):
    # derived inputs of the target and the date, extended along the path: the same as appending each forecast to
    # the history as the next bar's close and computing every input again over the whole file
    from pricernn.data.covariates import extra_inputs
    from pricernn.data.preprocess import encode

    names = ["log_return", "volatility_5", "rsi_14", "macd", "bollinger_20", "day_of_week", "month"]
    window, steps = 10, 6
    dm = PriceDataModule(window=window, derived=names, scaler=scaler, target_transform=transform, end="2004-12-31")
    dm.setup()
    torch.manual_seed(0)
    model = RecurrentForecaster(dm.n_features, 1, cell="gru", hidden_size=6, num_layers=1,
                                transform=dm.transform_state()).eval()  # fmt: skip
    windows, _, targets = dm.forecast_origins("test", steps)
    pick = [0, len(windows) // 2, len(windows) - 1]
    anchor = torch.tensor(targets.anchor[pick], dtype=torch.float32)
    path = PathInputs(targets.carry[pick], targets.target_dates[pick])
    batched = recursive_forecast(model, windows[pick], anchor, steps, path=path).double().numpy()
    raw = PriceDataModule(end="2004-12-31").prepare_series()[0]
    closes = pd.Series(raw.levels, index=raw.dates)
    for row, k in enumerate(pick):
        history, out = closes.loc[: targets.origin_dates[k]].copy(), []
        for h in range(steps):
            extra = extra_inputs(history.to_frame("Close"), "Close", ["Close"], names, {})
            series = encode(extra.frame, ["Close", *names], "Close", transform, extra.kinds, extra.bounds)
            x = torch.tensor(series.inputs[-window:], dtype=torch.float32)[None]
            last = torch.tensor([history.iloc[-1]], dtype=torch.float32)
            x_norm, _, ctx = model.normalizer.normalize(x, x.new_zeros(1, 1), last)
            with torch.no_grad():
                price = float(model.to_price(model(x_norm), ctx)[0, 0])
            history.loc[pd.Timestamp(targets.target_dates[k, h])] = price
            out.append(price)
        np.testing.assert_allclose(batched[row], out, rtol=1e-5)
