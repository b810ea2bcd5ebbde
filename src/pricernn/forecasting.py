"""Multi-step forecasts from a trained model: direct for its horizon, recursive beyond it, batched over origins."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf

from pricernn.data import PriceDataModule
from pricernn.errors import UserError, check, first_line
from pricernn.files import write_atomic
from pricernn.models import RecurrentForecaster
from pricernn.plots import forecast_figure, render


def load_model(ckpt: str | Path) -> RecurrentForecaster:
    """Load a pricernn checkpoint safely (``weights_only``: a checkpoint cannot run code) on the CPU."""
    path = Path(str(ckpt)).expanduser()
    check(path.is_file(), f"ckpt={ckpt}: no such checkpoint file")
    try:
        model = RecurrentForecaster.load_from_checkpoint(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated, foreign or hand-edited files fail in many ways
        reason = first_line(err)
        raise UserError(f"ckpt={ckpt}: not a readable pricernn checkpoint ({reason})") from err
    check(model.normalizer is not None, f"ckpt={ckpt}: has no data transform, so it cannot forecast prices")
    return model.eval()


@torch.no_grad()
def recursive_forecast(
    model: RecurrentForecaster, inputs: torch.Tensor, last_price: torch.Tensor, steps: int
) -> torch.Tensor:
    """Forecast ``steps`` prices after each window of ``inputs`` (B, W, F), in model units (prices or log
    returns, as at training); ``last_price`` (B,) is each window's last target price.

    The model predicts its ``horizon`` steps at once; for more steps each forecast is appended to the window
    (the oldest rows drop out) and the model runs again, as many times as needed. All origins advance together.
    Returns prices (B, steps).
    """
    check(steps >= 1, f"steps={steps} must be at least 1")
    horizon, n_features = model.hparams.horizon, inputs.shape[-1]
    if steps > horizon and n_features != 1:
        raise UserError(
            f"steps={steps} needs recursion beyond the model's horizon ({horizon}), which works only "
            f"for a model whose sole input is its target; this one reads {n_features} columns"
        )
    normalizer, window, anchor = model.normalizer, inputs, last_price
    chunks: list[torch.Tensor] = []
    done = 0
    while done < steps:
        x, _, ctx = normalizer.normalize(window, window.new_zeros(len(window), horizon), anchor)
        prices = model.to_price(model(x), ctx)
        take = min(horizon, steps - done)
        new_prices = prices[:, :take]
        chunks.append(new_prices)
        done += take
        if done == steps:
            break
        if normalizer.log_return:  # the window holds log returns: append the returns of the new prices
            path = torch.cat([anchor[:, None], new_prices], dim=1)
            appended = torch.log(path[:, 1:] / path[:, :-1])
        else:
            appended = new_prices
        window = torch.cat([window[:, take:], appended[..., None]], dim=1)
        anchor = new_prices[:, -1]
    return torch.cat(chunks, dim=1)


def next_business_days(last_date: pd.Timestamp, steps: int) -> pd.DatetimeIndex:
    """The ``steps`` weekdays after ``last_date`` (exchange holidays are not known here and not skipped)."""
    return pd.bdate_range(last_date + pd.offsets.BDay(1), periods=steps)


def forecast_history(cfg: DictConfig, out_dir: str | Path) -> pd.DataFrame:
    """Load ``cfg.ckpt``, read the history ``cfg.data`` points at, forecast ``cfg.steps`` business days after
    its last date; write forecast.csv and forecast.png to ``out_dir`` and return the forecast."""
    check(cfg.get("ckpt"), "ckpt is not set: give ckpt=PATH (a run's checkpoints/best.ckpt)")
    model = load_model(cfg.ckpt)
    state = model.hparams.transform
    data = {
        **OmegaConf.to_container(cfg.data, resolve=True),
        **{k: state[k] for k in ("features", "target", "target_transform", "window", "horizon")},
    }
    try:
        series = PriceDataModule(**data).prepare_series()
    except UserError as err:
        raise UserError(f"{err} (ckpt={cfg.ckpt} reads columns {', '.join(state['features'])})") from err
    window = state["window"]
    check(
        len(series.dates) >= window,
        f"{cfg.data.path}: {len(series.dates)} usable rows, but the model reads windows of {window}",
    )
    inputs = torch.tensor(series.inputs[-window:], dtype=torch.float32)[None]
    last_price = torch.tensor(series.levels[-1:], dtype=torch.float32)
    prices = recursive_forecast(model, inputs, last_price, int(cfg.steps))[0].double().numpy()
    dates = next_business_days(series.dates[-1], int(cfg.steps))
    frame = pd.DataFrame({"date": dates.strftime("%Y-%m-%d"), "predicted": prices})

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(out_dir / "forecast.csv", frame.to_csv(index=False))
    shown = slice(-int(cfg.history), None)
    figure = forecast_figure(
        series.dates[shown],
        series.levels[shown],
        dates,
        prices,
        f"{cfg.steps}-step forecast from {Path(str(cfg.ckpt)).name}",
        state["target"],
    )
    render(figure, out_dir / "forecast.png")
    return frame
