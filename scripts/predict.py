"""Forecast the next business days after a price history: python scripts/predict.py ckpt=PATH steps=N"""

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from pricernn.errors import exit_on_user_error, strip_debug_flag
from pricernn.forecasting import forecast_history

CONF = str(Path(__file__).resolve().parent.parent / "conf")


@hydra.main(version_base="1.3", config_path=CONF, config_name="predict")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    out_dir = Path(HydraConfig.get().runtime.output_dir)
    frame = forecast_history(cfg, out_dir)
    print(frame.to_string(index=False))
    print(f"written: {out_dir / 'forecast.csv'}, {out_dir / 'forecast.png'}")


if __name__ == "__main__":
    strip_debug_flag()
    main()
