"""Forecasts from a trained network: several steps ahead, batched over origins (multistep), and combined per
horizon as the validation period supports (combination)."""

__all__ = ["combination", "multistep"]
