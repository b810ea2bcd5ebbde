"""Data: load a price history, preprocess it without look-ahead, window it, serve batches."""

from importlib import import_module
from typing import Any

_HOMES = {
    "PriceDataModule": "datamodule",
    "SplitTargets": "panel",
    "load_prices": "sources",
    "Normalizer": "transforms",
    "WindowDataset": "windows",
    "sliding_windows": "windows",
}
__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    """Names are imported when first used (PEP 562), so that the command-line check can read calendar.py and
    sources.py without importing Lightning, which the data module needs (about 4 s)."""
    if name not in _HOMES:
        raise AttributeError(f"module 'pricernn.data' has no attribute {name!r}")
    return getattr(import_module(f"pricernn.data.{_HOMES[name]}"), name)
