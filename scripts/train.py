"""Train and test one model, or sweep many: python scripts/train.py [-m] [group=option ...] [key=value ...]"""

from pathlib import Path

import hydra
from omegaconf import DictConfig

from pricernn.tasks.cli import prepare_command_line

CONF = str(Path(__file__).resolve().parent.parent / "conf")


@hydra.main(version_base="1.3", config_path=CONF, config_name="train")
def main(cfg: DictConfig) -> float:
    # Imported here, not above: a parallel sweep's launcher then starts its workers at once instead of first
    # spending ~5 s importing torch and Lightning that only the workers use.
    from pricernn.tasks.jobs import run_hydra_job

    return run_hydra_job(cfg)


if __name__ == "__main__":
    prepare_command_line("train", CONF)  # a wrong key or value: one line, exit 2, before Hydra starts
    Path("outputs").mkdir(exist_ok=True)  # SQLite studies (hparams_search=optuna) live here
    main()
