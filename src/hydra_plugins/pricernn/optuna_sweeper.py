"""Hydra's Optuna sweeper, ending like every other sweep when no trial finished.

It lives here, not in the pricernn package, because Hydra instantiates only sweepers defined in the
``hydra_plugins`` namespace (``conf/hparams_search/optuna.yaml`` names it).

When every trial fails (a data file too short for any window the search space allows, say), the plugin asks the
study for its best trial and dies with a traceback. Here the sweep ends normally instead, so that the
end-of-sweep callback lists each failed run with its reason and exits 2 (pricernn.reporting.leaderboard).
"""

from __future__ import annotations

import logging

from hydra_plugins.hydra_optuna_sweeper.optuna_sweeper import OptunaSweeper as PluginSweeper

log = logging.getLogger("pricernn")
# what optuna 2.x raises for the best trial of a study without a finished one (database storage, in memory)
NO_FINISHED_TRIAL = ("Record does not exist", "No trials are completed yet")


class OptunaSweeper(PluginSweeper):
    def sweep(self, arguments: list[str]) -> None:
        try:
            return super().sweep(arguments)
        except ValueError as err:
            if not any(text in str(err) for text in NO_FINISHED_TRIAL):
                raise
            log.error("no trial finished, so the study has no best one; every run failed (listed below)")
            return None
