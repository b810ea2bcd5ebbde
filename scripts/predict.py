"""Forecast the next bars after a price history: python scripts/predict.py ckpt=PATH steps=N"""

import json
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from pricernn.errors import UserError, exit_on_user_error
from pricernn.files import write_atomic
from pricernn.tasks.cli import prepare_command_line

CONF = str(Path(__file__).resolve().parent.parent / "conf")


@hydra.main(version_base="1.3", config_path=CONF, config_name="predict")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    from pricernn.checkpoints import given_keys  # imported here: a bad command line is refused before torch loads
    from pricernn.tasks.predict import forecast_history
    from pricernn.tasks.train import shown_path

    hydra_cfg = HydraConfig.get()
    out_dir = Path(hydra_cfg.runtime.output_dir)
    try:  # data.* keys on the command line replace the checkpoint's data settings, key by key
        forecast = forecast_history(cfg, out_dir, given_keys(list(hydra_cfg.overrides.task), "data"))
    except UserError as err:
        write_atomic(out_dir / "failed.json", json.dumps({"error": str(err)}) + "\n")  # the folder says why
        raise
    print(forecast.describe(cfg.ckpt))
    picked = ("symbol", "date", "predicted")
    shown = [c for c in forecast.frame.columns if c in picked or c.startswith(("lower_", "upper_"))]
    print(forecast.frame[shown].to_string(index=False, float_format=lambda x: f"{x:#.6g}"))
    print(f"written: {shown_path(out_dir / 'forecast.csv')}, {shown_path(out_dir / 'forecast.png')}")


if __name__ == "__main__":
    prepare_command_line("predict", CONF)  # a wrong key or value: one line, exit 2, before Hydra starts
    main()
