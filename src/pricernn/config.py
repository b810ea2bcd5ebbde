"""The typed schema of the configuration: every key, its type and its allowed values, in one place.

The YAML files under ``conf/`` hold the defaults and the comments users read; the dataclasses here hold the
types and the rules. :func:`validate` checks a composed config against them and turns the first problem into
one :class:`~pricernn.errors.UserError` line that names the key, the value and what is expected (a wrong type,
an unknown key with the closest known one, a value out of range), so no wrong value reaches the code as a
traceback. Sweeps validate every job; ``pricernn.cli`` validates the command line before Hydra starts.
"""

from __future__ import annotations

import difflib
from dataclasses import MISSING as NO_DEFAULT
from dataclasses import dataclass, field, fields
from functools import cache
from typing import Any, get_type_hints

import pandas as pd
from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import ValidationError

from pricernn.errors import UserError, check

FILL_METHODS = ("ffill", "interpolate", "drop")
TARGET_TRANSFORMS = ("price", "log_return")
SCALERS = ("window", "standard", "minmax", "none")
CELLS = ("rnn", "lstm", "gru")
OPTIMIZERS = ("adam", "adamw")
SCHEDULERS = ("none", "plateau", "cosine")
STRATEGIES = ("recursive", "direct", "auto")
INTERVAL_METHODS = ("conformal", "aci", "quantile")
LOSSES = ("mse", "quantile")


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
    symbol_column: str | None = rule()
    symbol: str | None = rule()
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
    scaler: str = rule(choices=SCALERS)
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
    """``data`` keys that are not given on the command line come from the checkpoint (pricernn.forecasting)."""

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

_EXPECTED = {
    int: "a whole number",
    float: "a number",
    bool: "true or false",
    str: "a text value",
    list[str]: "a list of column names like [Open,Close]",
    list[float]: "a list of numbers like [0.7,0.15,0.15]",
}


def validate(cfg: DictConfig, schema: type = TrainConfig) -> DictConfig:
    """``cfg`` checked against ``schema`` and converted by it ("30" becomes 30), or one UserError line.

    Returns a plain (untyped) config, so later code may merge into it (walk-forward folds do)."""
    raw = OmegaConf.to_container(cfg, resolve=True)
    if isinstance(raw.get("data"), dict) and isinstance(raw["data"].get("features"), str):
        raw["data"]["features"] = [raw["data"]["features"]]  # data.features=Close means [Close]
    _check_keys(raw, schema, "", schema)
    try:
        typed = OmegaConf.merge(OmegaConf.structured(schema), raw)
    except ValidationError as err:
        raise UserError(_type_message(err, raw, schema)) from None
    _check_rules(typed, schema, "")
    _check_data(typed.get("data"))
    if typed.get("model") is not None:
        _check_model(typed.model)
        data = typed.get("data")
        several = typed.model.strategy != "recursive" or (data is not None and data.horizon > 1)
        check(
            not (typed.model.loss == "quantile" and several and data is not None
                 and data.target_transform == "log_return"),
            "model.loss=quantile with data.target_transform=log_return learns each step's return quantiles, and "
            "their sum is not a quantile of the summed return: for several outputs use data.target_transform=price",
        )  # fmt: skip
    if typed.get("evaluation") is not None:
        levels = list(typed.evaluation.intervals)
        check(
            all(0 < level < 1 for level in levels) and len(set(levels)) == len(levels),
            f"evaluation.intervals={show_value(levels)} must be distinct levels between 0 and 1, like [0.8,0.95]",
        )
        if typed.evaluation.interval_method == "quantile" and typed.get("model") is not None:
            _check_learned_levels(typed.model, levels)
    result = OmegaConf.to_container(typed)
    if "trainer" in result:
        result["trainer"] = {k: v for k, v in result["trainer"].items() if k in raw["trainer"]}
    return OmegaConf.create(result)


def check_section(schema: type, prefix: str, values: dict[str, Any]) -> None:
    """One section's values checked by the same rules as a whole config: the arguments of a data module or a
    model built from Python rather than from a config (``prefix`` is ``data`` or ``model``)."""
    values = {k: _plain(v) for k, v in values.items()}
    if isinstance(values.get("features"), str):
        values["features"] = [values["features"]]  # features="Close" means ["Close"], as on the command line
    try:
        typed = OmegaConf.merge(OmegaConf.structured(schema), values)
    except ValidationError as err:
        name = str(err.full_key).split("[")[0]
        raise UserError(f"{prefix}.{name}={show_value(values.get(name))}: expected {_expected(schema, name)}") from None
    _check_rules(typed, schema, f"{prefix}.")
    if schema is DataConfig:
        _check_data(typed)
    if schema is ModelConfig:
        _check_model(typed)


def _plain(value: Any) -> Any:
    """Python values as OmegaConf knows them: tuples as lists, numpy scalars (np.int64(30)) as numbers."""
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value.item() if hasattr(value, "item") and hasattr(value, "dtype") else value


def key_names(schema: type, prefix: str = "") -> list[str]:
    """Every dotted key the schema knows (``data.window``, ``model.lr``, ...)."""
    names = []
    for f in fields(schema):
        kind = _hints(schema)[f.name]
        if _is_section(kind):
            names += key_names(kind, f"{prefix}{f.name}.")
        else:
            names.append(f"{prefix}{f.name}")
    return names


def unknown_key_message(key: str, schema: type) -> str:
    """``unknown key data.windw; did you mean data.window?``: the closest known key by spelling."""
    known = key_names(schema)
    group = key.rpartition(".")[0]
    candidates = [k for k in known if k.rpartition(".")[0] == group] or known
    if not group:  # the top level: its keys, and its sections as data.*, model.*, ...
        candidates += sorted({f"{k.split('.')[0]}.*" for k in known if "." in k})
    close = difflib.get_close_matches(key, candidates, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]}?" if close else f"the keys are: {', '.join(candidates)}"
    return f"unknown key {key}; {hint}"


def _check_keys(raw: dict, schema: type, prefix: str, root: type) -> None:
    hints = _hints(schema)
    names = {f.name for f in fields(schema)}
    for key, value in raw.items():
        if key not in names:
            raise UserError(unknown_key_message(f"{prefix}{key}", root))
        if _is_section(hints[key]) and isinstance(value, dict):
            _check_keys(value, hints[key], f"{prefix}{key}.", root)


@cache
def _hints(schema: type) -> dict[str, Any]:
    """The schema's field types (``from __future__ import annotations`` keeps them as strings until asked)."""
    return get_type_hints(schema)


def _is_section(kind: Any) -> bool:
    return isinstance(kind, type) and hasattr(kind, "__dataclass_fields__")


def _type_message(err: ValidationError, raw: dict, schema: type) -> str:
    path = str(err.full_key).split("[")[0]
    section, _, name = path.rpartition(".")
    owner = _hints(schema)[section] if section else schema
    value = raw.get(section, {}).get(name) if section else raw.get(name)
    return f"{path}={show_value(value)}: expected {_expected(owner, name)}"


def _expected(schema: type, name: str) -> str:
    kind = _hints(schema).get(name)
    return next((text for t, text in _EXPECTED.items() if kind == t or kind == t | None), f"a {kind}")


def show_value(value: Any) -> str:
    """A value as it is typed on the command line: ``[0.7,0.15,0.15]``, not ``[0.7, 0.15, 0.15]``."""
    if isinstance(value, list):
        return "[" + ",".join(map(str, value)) + "]"
    return str(value)


def _check_rules(cfg: DictConfig, schema: type, prefix: str) -> None:
    hints = _hints(schema)
    for f in fields(schema):
        value, key = cfg.get(f.name), f"{prefix}{f.name}"
        kind = hints[f.name]
        if _is_section(kind):
            _check_rules(value, kind, f"{key}.")
            continue
        if OmegaConf.is_missing(cfg, f.name) and f.default is MISSING and f.default_factory is NO_DEFAULT:
            raise UserError(f"{key} is not set: give {key}=VALUE")
        limits = f.metadata
        if value is None or not limits:
            continue
        if "choices" in limits and value not in limits["choices"]:
            near = [c for c in limits["choices"] if str(c).lower() == str(value).lower()]
            hint = f" (did you mean {near[0]}?)" if near else ""
            raise UserError(f"unknown {key}={value}{hint}; choose one of: {', '.join(limits['choices'])}")
        low, above, below = limits.get("min"), limits.get("above"), limits.get("below")
        if low is not None and below is not None:
            check(low <= value < below, f"{key}={value} must be in [{low:g}, {below:g})")
        elif low is not None:
            check(value >= low, f"{key}={value} must be at least {low:g}")
        if above is not None:
            check(value > above, f"{key}={value} must be " + ("positive" if above == 0 else f"above {above:g}"))


def _check_model(model: DictConfig) -> None:
    """A quantile model's levels: distinct, between 0 and 1, the median among them (its point forecast)."""
    if model.get("loss") != "quantile":
        return
    levels = list(model.quantiles)
    check(
        all(0 < q < 1 for q in levels) and len(set(levels)) == len(levels) and 0.5 in levels,
        f"model.quantiles={show_value(levels)} must be distinct levels between 0 and 1 with 0.5 among them (the "
        "median is the point forecast), like [0.1,0.5,0.9]",
    )


def _check_learned_levels(model: DictConfig, levels: list[float]) -> None:
    """``evaluation.interval_method=quantile`` reports the bands a quantile model learned, uncalibrated: each
    level needs its two quantiles."""
    check(model.loss == "quantile", "evaluation.interval_method=quantile reads learned bands: set model.loss=quantile")
    check(
        model.strategy == "direct",
        "evaluation.interval_method=quantile reads learned bands, which a network has only for the horizons it "
        "outputs: set model.strategy=direct (one output per evaluation step)",
    )
    learned = list(model.quantiles)
    for level in levels:
        pair = (round((1 - level) / 2, 6), round((1 + level) / 2, 6))
        check(
            all(any(abs(q - p) < 1e-9 for q in learned) for p in pair),
            f"evaluation.interval_method=quantile: the {level:g} band needs model.quantiles to hold {pair[0]:g} and "
            f"{pair[1]:g} (now {show_value(learned)}); or use evaluation.interval_method=aci (calibrates any level)",
        )


def _check_data(data: DictConfig | None) -> None:
    """Rules that tie several data keys together."""
    if data is None:
        return
    fractions = list(data.split)
    check(
        len(fractions) == 3 and all(f > 0 for f in fractions) and abs(sum(fractions) - 1) < 1e-6,
        f"data.split={show_value(fractions)} must be three positive fractions (train, val, test) summing to 1",
    )
    check(
        (data.val_start is None) == (data.test_start is None),
        "data.val_start and data.test_start go together: give both dates or neither",
    )
    for key in ("val_start", "test_start", "end"):
        value = data.get(key)
        if value is not None:
            try:
                pd.Timestamp(value)
            except (ValueError, TypeError):
                raise UserError(f"data.{key}={value}: expected a date like 2016-01-04") from None
    if data.val_start is not None:
        check(
            pd.Timestamp(data.val_start) < pd.Timestamp(data.test_start),
            f"data.val_start={data.val_start} must come before data.test_start={data.test_start}",
        )
    check(
        not (data.scaler == "window" and data.target_transform == "log_return"),
        "data.scaler=window scales prices by the last price; with data.target_transform=log_return use "
        "data.scaler=standard (returns need no rescaling by level)",
    )
