"""pricernn: forecast asset prices with recurrent networks (PyTorch Lightning + Hydra)."""

from pricernn.errors import UserError

__version__ = "0.1.0"
__all__ = ["UserError", "__version__"]
