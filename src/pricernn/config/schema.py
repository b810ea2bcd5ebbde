"""The typed schema of the configuration: every key, its type and its allowed values, in one place (the
dataclasses :mod:`pricernn.config.validate` validates composed configs against).

The YAML files under ``conf/`` hold the defaults and the comments users read; the dataclasses here hold the
types and the rules (``rule``: choices and limits).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING

FILL_METHODS = ("ffill", "interpolate", "drop")
TARGET_TRANSFORMS = ("price", "log_return")
SCALERS = ("window", "standard", "minmax", "none")
CELLS = ("rnn", "lstm", "gru")
OPTIMIZERS = ("adam", "adamw")
SCHEDULERS = ("none", "plateau", "cosine")
STRATEGIES = ("recursive", "direct", "auto")
INTERVAL_METHODS = ("conformal", "aci", "quantile")
LOSSES = ("mse", "quantile")
LAYOUTS = ("long", "wide", "folder")


def rule(default: Any = MISSING, **limits: Any) -> Any:
    """A key with limits: ``choices``, ``min`` (inclusive), ``above`` (exclusive) or ``below`` (exclusive).
    Without a default it is required (its default lives in the YAML files)."""
    return field(default=default, metadata=limits)


@dataclass
class DataConfig:
    path: str | None = rule()
    date_column: str = rule()
    target: str = rule()
    features: list[str] | None = rule()
    derived: Any = rule()
    covariates: Any = rule()
    symbol_column: str | None = rule()
    symbol: str | None = rule()
    symbols: Any = rule()
    layout: str | None = rule(choices=LAYOUTS)
    sep: str | None = rule()
    decimal: str | None = rule(choices=(".", ","))
    thousands: str | None = rule()
    date_format: str | None = rule()
    dayfirst: bool | None = rule()
    sheet: Any = rule()
    timezone: str | None = rule()
    freq: str | None = rule()
    calendar: str | None = rule()
    fill: str = rule(choices=FILL_METHODS)
    target_transform: str = rule(choices=TARGET_TRANSFORMS)
    scaler: str | None = rule(choices=SCALERS)
    window: int = rule(min=1)
    horizon: int = rule(min=1)
    split: list[float] = rule()
    val_start: str | None = rule()
    test_start: str | None = rule()
    end: str | None = rule()
    batch_size: int = rule(min=1)
    eval_batch_size: int = rule(min=1)
    pin_memory: bool | None = rule()


@dataclass
class ModelConfig:
    cell: str = rule(choices=CELLS)
    hidden_size: int = rule(min=1)
    num_layers: int = rule(min=1)
    dropout: float = rule(min=0.0, below=1.0)
    lr: float = rule(above=0.0)
    weight_decay: float = rule(min=0.0)
    optimizer: str = rule(choices=OPTIMIZERS)
    scheduler: str = rule(choices=SCHEDULERS)
    strategy: str = rule(choices=STRATEGIES)
    loss: str = rule(choices=LOSSES)
    quantiles: list[float] = rule()
    symbol_embedding: int = rule(min=0)


@dataclass
class TrainerConfig:
    """pytorch_lightning.Trainer's keyword arguments (the ones a config may set; ``logger`` and ``callbacks``
    come from their own groups). Keys whose Lightning type is a union are ``Any``. Only the keys a config sets
    reach the Trainer, so these defaults are never used: Lightning's own apply."""

    accelerator: str = rule("auto", choices=("cpu", "gpu", "cuda", "mps", "auto"))
    strategy: Any = "auto"
    devices: Any = "auto"
    num_nodes: int = rule(1, min=1)
    precision: Any = "32-true"
    fast_dev_run: Any = False
    max_epochs: int | None = rule(None, min=-1)
    min_epochs: int | None = None
    max_steps: int = -1
    min_steps: int | None = None
    max_time: Any = None
    limit_train_batches: Any = None
    limit_val_batches: Any = None
    limit_test_batches: Any = None
    limit_predict_batches: Any = None
    overfit_batches: Any = 0.0
    val_check_interval: Any = None
    check_val_every_n_epoch: int | None = 1
    num_sanity_val_steps: int | None = None
    log_every_n_steps: int | None = rule(None, min=1)
    enable_checkpointing: bool | None = None
    enable_progress_bar: bool | None = None
    enable_model_summary: bool | None = None
    accumulate_grad_batches: int = 1
    gradient_clip_val: float | None = rule(None, min=0.0)
    gradient_clip_algorithm: str | None = None
    deterministic: Any = None
    benchmark: bool | None = None
    inference_mode: bool = True
    use_distributed_sampler: bool = True
    profiler: Any = None
    detect_anomaly: bool = False
    barebones: bool = False
    sync_batchnorm: bool = False
    reload_dataloaders_every_n_epochs: int = 0


@dataclass
class TradingConfig:
    short: bool = rule()
    cost_bps: float = rule(min=0.0)


@dataclass
class EvaluationConfig:
    steps: int = rule(min=1)
    ma_window: int = rule(min=1)
    fan_origins: int = rule(min=1)
    shrink: bool = rule()
    drift: bool = rule()
    intervals: list[float] = rule()
    interval_method: str = rule(choices=INTERVAL_METHODS)
    aci_gamma: float = rule(above=0)
    trading: TradingConfig = field(default_factory=TradingConfig)


@dataclass
class TrainConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    callbacks: Any = None
    logger: Any = None
    seed: int = rule()
    threads: int | None = rule(min=1)
    resume: str | None = rule()
    optimized_metric: str = rule()


@dataclass
class BacktestConfig(TrainConfig):
    folds: int = rule(min=1)
    ckpt: str | None = rule()


@dataclass
class PredictConfig:
    """``data`` keys that are not given on the command line come from the checkpoint (pricernn.tasks.predict)."""

    data: DataConfig = field(default_factory=DataConfig)
    ckpt: str | None = rule()
    steps: int = rule(min=1)
    history: int = rule(min=1)


@dataclass
class CollectConfig:
    tickers: list[str] = rule()
    start: str = rule()
    end: str | None = rule()
    out: str = rule()


SCHEMAS = {"train": TrainConfig, "backtest": BacktestConfig, "predict": PredictConfig, "collect": CollectConfig}
