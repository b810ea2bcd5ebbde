"""Checking a configuration against its typed schema (:mod:`pricernn.config.schema`, re-exported here).

The YAML files under ``conf/`` hold the defaults and the comments users read; the schema's dataclasses hold
the types and the rules. :func:`validate` checks a composed config against them and turns the first problem into
one :class:`~pricernn.errors.UserError` line that names the key, the value and what is expected (a wrong type,
an unknown key with the closest known one, a value out of range), so no wrong value reaches the code as a
traceback. Sweeps validate every job; ``pricernn.tasks.cli`` validates the command line before Hydra starts.
"""

from __future__ import annotations

import difflib
from dataclasses import MISSING as NO_DEFAULT
from dataclasses import fields
from functools import cache
from typing import Any, get_type_hints

import pandas as pd
from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import ValidationError

from pricernn.config.schema import (  # noqa: F401  (re-exported: pricernn.config.validate is where callers look)
    CELLS,
    FILL_METHODS,
    INTERVAL_METHODS,
    LOSSES,
    OPTIMIZERS,
    SCALERS,
    SCHEDULERS,
    SCHEMAS,
    STRATEGIES,
    TARGET_TRANSFORMS,
    BacktestConfig,
    CollectConfig,
    DataConfig,
    EvaluationConfig,
    ModelConfig,
    PredictConfig,
    TradingConfig,
    TrainConfig,
    TrainerConfig,
    rule,
)
from pricernn.errors import UserError, check

_EXPECTED = {
    int: "a whole number",
    float: "a number",
    bool: "true or false",
    str: "a text value",
    list[str]: "a list of column names like [Open,Close]",
    list[float]: "a list of numbers like [0.7,0.15,0.15]",
}


def default_scaler(target_transform: str) -> str:
    """``data.scaler`` left null follows ``data.target_transform``: prices are scaled by each window's last price
    (``window``: relative moves, any price level), log returns are already level-free and only standardised."""
    return "standard" if target_transform == "log_return" else "window"


def validate(cfg: DictConfig, schema: type = TrainConfig) -> DictConfig:
    """``cfg`` checked against ``schema`` and converted by it ("30" becomes 30), or one UserError line.

    Returns a plain (untyped) config, so later code may merge into it (walk-forward folds do)."""
    raw = OmegaConf.to_container(cfg, resolve=True)
    if isinstance(raw.get("data"), dict) and isinstance(raw["data"].get("features"), str):
        raw["data"]["features"] = [raw["data"]["features"]]  # data.features=Close means [Close]
    if isinstance(raw.get("data"), dict) and raw["data"].get("scaler", "") is None:
        raw["data"]["scaler"] = default_scaler(raw["data"].get("target_transform"))
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
            all(0 < lv < 1 and abs(100 * lv - round(100 * lv)) < 1e-9 for lv in levels)
            and len({round(100 * lv) for lv in levels}) == len(levels),
            f"evaluation.intervals={show_value(levels)} must be distinct levels between 0 and 1 in whole percent "
            "(they name the columns: coverage_80, lower_95), like [0.8,0.95]",
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
    """``evaluation.interval_method=quantile`` reports the bands a quantile model learned, uncalibrated: it needs
    a quantile model, one output per horizon (direct) and each level's two quantiles; every missing one is named
    in the one message."""
    learned = [float(q) for q in model.quantiles]
    needed = sorted({round(p, 6) for lv in levels for p in ((1 - lv) / 2, (1 + lv) / 2)} | {0.5})
    missing = [p for p in needed if not any(abs(q - p) < 1e-9 for q in learned)]
    wanted = []
    if model.loss != "quantile":
        wanted.append("model.loss=quantile")
    if model.strategy != "direct":
        wanted.append("model.strategy=direct (learned bands exist only for the horizons a network outputs)")
    if missing:
        wanted.append(f"model.quantiles={show_value(sorted(set(learned) | set(missing)))} (the levels' pairs)")
    check(
        not wanted,
        f"evaluation.interval_method=quantile reports learned bands: set {', '.join(wanted)}; or use "
        "evaluation.interval_method=aci, which calibrates any model at any level",
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
    symbols = data.get("symbols")
    if symbols is not None:
        check(
            symbols == "all" or (OmegaConf.is_list(symbols) or isinstance(symbols, list)) and len(symbols) > 0,
            f"data.symbols={show_value(symbols)}: expected all or a list of series, like [AAPL,MSFT]",
        )
        check(data.symbol is None, "data.symbol picks one series and data.symbols several: give one of them")
    check(
        data.get("layout") is None or symbols is not None,
        f"data.layout={data.get('layout')} reads several series: give data.symbols=all or a list, like [AAPL,MSFT]",
    )
    check(
        not (data.scaler == "window" and data.target_transform == "log_return"),
        "data.scaler=window scales prices by the last price; with data.target_transform=log_return use "
        "data.scaler=standard (returns need no rescaling by level)",
    )
