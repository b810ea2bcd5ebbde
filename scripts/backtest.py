"""Walk-forward backtest: python scripts/backtest.py folds=K [group=option ...] [key=value ...]"""

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from pricernn.errors import strip_debug_flag

CONF = str(Path(__file__).resolve().parent.parent / "conf")


@hydra.main(version_base="1.3", config_path=CONF, config_name="backtest")
def main(cfg: DictConfig) -> float:
    from pricernn.backtest import backtest  # imported here for the reason given in scripts/train.py
    from pricernn.training import launcher_threads, run

    hydra_cfg = HydraConfig.get()
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    return run(cfg, hydra_cfg.runtime.output_dir, multirun, task=backtest, threads=launcher_threads(hydra_cfg.launcher))


if __name__ == "__main__":
    strip_debug_flag()
    Path("outputs").mkdir(exist_ok=True)  # SQLite studies (hparams_search=optuna) live here
    main()
