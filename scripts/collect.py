"""Collect daily prices by ticker: python scripts/collect.py tickers=[AAPL,MSFT] start=2010-01-01 out=FILE"""

import logging
from pathlib import Path

import hydra
from omegaconf import DictConfig

from pricernn.errors import exit_on_user_error
from pricernn.tasks.cli import prepare_command_line

CONF = str(Path(__file__).resolve().parent.parent / "conf")


@hydra.main(version_base="1.3", config_path=CONF, config_name="collect")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    from pricernn.data.collect import collect

    logging.getLogger("pricernn").setLevel(logging.INFO)
    rows = collect(list(cfg.tickers), str(cfg.start), cfg.out, cfg.end)
    print(f"written: {cfg.out} ({len(rows)} rows, {rows['symbol'].nunique()} tickers)")


if __name__ == "__main__":
    prepare_command_line("collect", CONF)  # a wrong key or value: one line, exit 2, before Hydra starts
    main()
