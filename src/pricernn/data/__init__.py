"""Data: load a price history, preprocess it without look-ahead, window it, serve batches."""

from pricernn.data.datamodule import PriceDataModule, SplitTargets
from pricernn.data.sources import load_prices
from pricernn.data.transforms import Normalizer
from pricernn.data.windows import WindowDataset, sliding_windows

__all__ = ["Normalizer", "PriceDataModule", "SplitTargets", "WindowDataset", "load_prices", "sliding_windows"]
