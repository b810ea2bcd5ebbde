"""Models: one recurrent forecaster, cell chosen by name (rnn, lstm, gru)."""

from pricernn.models.forecaster import CELLS, RecurrentForecaster

__all__ = ["CELLS", "RecurrentForecaster"]
