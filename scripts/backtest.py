"""Walk-forward backtest: python scripts/backtest.py folds=K [group=option ...] [key=value ...]"""

from functools import partial
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from pricernn.tasks.cli import prepare_command_line

CONF = str(Path(__file__).resolve().parent.parent / "conf")


@hydra.main(version_base="1.3", config_path=CONF, config_name="backtest")
def main(cfg: DictConfig) -> float:
    from pricernn.tasks.backtest import backtest  # imported here for the reason given in scripts/train.py
    from pricernn.tasks.jobs import run_hydra_job

    overrides = list(HydraConfig.get().overrides.task)  # the keys that ckpt= lets the command line change
    return run_hydra_job(cfg, task=partial(backtest, task_overrides=overrides))


if __name__ == "__main__":
    prepare_command_line("backtest", CONF)  # a wrong key or value: one line, exit 2, before Hydra starts
    Path("outputs").mkdir(exist_ok=True)  # SQLite studies (hparams_search=optuna) live here
    main()
