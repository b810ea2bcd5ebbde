import numpy as np
import pandas as pd
import pytest
import torch

from pricernn import UserError
from pricernn.data import PriceDataModule
from pricernn.forecasting import load_model, next_business_days, recursive_forecast
from pricernn.models import RecurrentForecaster


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
    closes = PriceDataModule().prepare_series().levels  # raw closes; a log-return series starts a day later
    offset = 1 if transform == "log_return" else 0
    for row, origin in enumerate(origins):
        expected = _by_hand(model, closes[: origin + offset + 1], window, steps, transform)
        np.testing.assert_allclose(batched[row], expected, rtol=2e-5)


def test_recursion_beyond_horizon_needs_a_target_only_model():
    dm = PriceDataModule(window=10, features=["Open", "Close"])
    dm.setup()
    model = RecurrentForecaster(2, 1, hidden_size=4, num_layers=1, transform=dm.transform_state())
    x = torch.ones(1, 10, 2)
    assert recursive_forecast(model, x, torch.ones(1), 1).shape == (1, 1)
    with pytest.raises(UserError, match="steps=3 needs recursion beyond the model's horizon"):
        recursive_forecast(model, x, torch.ones(1), 3)


def test_future_dates_are_business_days():
    friday = pd.Timestamp("2018-12-28")
    days = next_business_days(friday, 6)
    assert list(days.strftime("%Y-%m-%d")) == [
        "2018-12-31",
        "2019-01-01",
        "2019-01-02",
        "2019-01-03",
        "2019-01-04",
        "2019-01-07",
    ]
    assert (days.day_of_week < 5).all()


def test_bad_checkpoints_name_the_file(tmp_path):
    with pytest.raises(UserError, match=r"ckpt=.*nope.ckpt: no such checkpoint file"):
        load_model(tmp_path / "nope.ckpt")
    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match=r"junk.ckpt: not a readable pricernn checkpoint"):
        load_model(tmp_path / "junk.ckpt")
    torch.save({"state_dict": {}}, tmp_path / "foreign.ckpt")
    with pytest.raises(UserError, match=r"foreign.ckpt: not a readable pricernn checkpoint"):
        load_model(tmp_path / "foreign.ckpt")


def test_predict_cli_forecasts_business_days_after_the_data(run_script, tmp_path, sp500, write_csv):
    assert run_script("train.py", "debug=fast", "data.window=10").returncode == 0
    (ckpt,) = (tmp_path / "outputs" / "runs").glob("*/checkpoints/best.ckpt")
    friday = next(i for i in range(400, 420) if sp500.index[i].day_of_week == 4)
    history = write_csv(sp500[["Close"]].iloc[: friday + 1], "history.csv")  # the history ends on a Friday
    result = run_script("predict.py", f"ckpt={ckpt}", "steps=10", f"data.path={history}")
    assert result.returncode == 0, result.stderr[-2000:]
    (out,) = (tmp_path / "outputs" / "forecasts").iterdir()
    forecast = pd.read_csv(out / "forecast.csv", parse_dates=["date"])
    assert len(forecast) == 10 and forecast["date"].iloc[0] == sp500.index[friday] + pd.Timedelta(days=3)
    assert (forecast["date"].dt.day_of_week < 5).all() and forecast["predicted"].notna().all()
    assert (out / "forecast.png").stat().st_size > 10_000
    assert not [f for f in out.iterdir() if ".tmp" in f.name]  # written whole, then renamed

    wrong = write_csv(sp500[["Open"]].iloc[:400], "open_only.csv")
    result = run_script("predict.py", f"ckpt={ckpt}", f"data.path={wrong}")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "no target (data.target) column 'Close'" in result.stderr and "reads columns Close" in result.stderr
