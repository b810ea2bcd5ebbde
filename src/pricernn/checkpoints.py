"""What a checkpoint carries beside the weights, and how it is read back safely.

A checkpoint is a stranger's file as often as one's own (shared, downloaded), so nothing read from it may decide
what code runs. ``weights_only`` keeps its pickle from running code; :func:`stored_settings` keeps its settings
from naming code for Hydra to build (``_target_``) or resolvers to run (``${...}``); :func:`fit_weights` refuses
weights that do not fit the model the checkpoint describes, or that are not finite. Every entry point reads
checkpoints through :func:`load_state`, so these checks hold for all of them.

Every checkpoint holds, as plain data:
- ``hyper_parameters.transform``: the fitted normaliser, the model's input columns and window, and the data
  contract (every ``data.*`` setting with the file as an absolute path, the training price range, the split
  dates) — ``predict.py`` forecasts from the data the model was trained on unless told otherwise;
- ``pricernn_config``: the run's whole resolved config, so ``resume=`` can refuse a config that differs and
  ``backtest.py ckpt=`` can re-run the same setup;
- ``pricernn_run``: the TensorBoard run to continue after a resume.
"""

from __future__ import annotations

import io
import math
from pathlib import Path, PurePath
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from pricernn.config.validate import TrainConfig, key_names, show_value
from pricernn.data.derived import VERSION as DERIVED_VERSION
from pricernn.errors import UserError, check, first_line
from pricernn.files import write_atomic
from pricernn.forecasting.combination import Combination
from pricernn.models import RecurrentForecaster

GROUPS = ("data", "model", "trainer", "callbacks", "logger", "hydra", "experiment", "hparams_search", "debug")
# Keys a resumed run may change: how long it trains, where it logs, how it is evaluated and run. Everything else
# (data, model, optimiser, seed, batches per epoch, ...) decides the weights, so it must match the checkpoint.
RESUMABLE_CHANGES = (
    "resume",
    "threads",
    "optimized_metric",
    "evaluation.",
    "logger.",
    "callbacks.",
    "trainer.max_epochs",
    "trainer.min_epochs",
    "trainer.max_steps",
    "trainer.max_time",
    "trainer.accelerator",
    "trainer.devices",
    "trainer.enable_progress_bar",
    "trainer.enable_model_summary",
    "trainer.log_every_n_steps",
    "data.eval_batch_size",
    "data.pin_memory",
)


def load_state(path: str | Path, option: str) -> dict[str, Any]:
    """A pricernn checkpoint's contents, read safely, or one line naming ``option``: a ``weights_only`` load
    (no pickle code), plain settings (:func:`stored_settings`, legacy targets dropped), and weights that fit the
    model they describe and are finite (:func:`fit_weights`)."""
    return _read(path, option)[0]


def load_model(ckpt: str | Path) -> tuple[RecurrentForecaster, Combination, dict | None]:
    """The model of a checkpoint, on the CPU, ready to forecast, and how its forecasts are combined per horizon
    (fitted on the validation period after training; a checkpoint without one forecasts as its network says)."""
    state, model = _read(ckpt, "ckpt")
    saved = state.get("pricernn_forecast")
    try:
        combination = Combination.from_dict(saved) if saved else Combination((model.primary,), (1.0,))
    except (KeyError, TypeError, ValueError) as err:
        raise UserError(f"ckpt={ckpt}: its pricernn_forecast is damaged ({first_line(err)})") from None
    check(
        0 < len(combination.choice) == len(combination.shrink)
        and len(combination.center) in (0, len(combination.shrink))
        and set(combination.choice) <= set(model.nets)
        and all(math.isfinite(w) for w in (*combination.shrink, *combination.center, combination.drift)),
        f"ckpt={ckpt}: its pricernn_forecast is damaged (networks {show_value(list(combination.choice))}, "
        f"weights {show_value(list(combination.shrink))}, centres {show_value(list(combination.center))}, "
        f"drift {show_value(combination.drift)})",
    )
    return model.eval(), combination, state.get("pricernn_intervals")


def _read(path: str | Path, option: str) -> tuple[dict[str, Any], RecurrentForecaster]:
    file = Path(str(path)).expanduser()
    check(not file.is_dir(), f"{option}={path}: is a directory; give a checkpoint file, e.g. {file / 'best.ckpt'}")
    check(file.is_file(), f"{option}={path}: no such checkpoint file")
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated, foreign or hand-edited files fail in many ways
        reason = first_line(err, limit=80)
        raise UserError(
            f"{option}={path}: not a readable checkpoint: damaged, or not written by torch ({reason})"
        ) from err
    check(
        isinstance(state, dict)
        and isinstance(state.get("hyper_parameters"), dict)
        and isinstance(state["hyper_parameters"].get("transform"), dict)
        and isinstance(state.get("state_dict"), dict),
        f"{option}={path}: not a pricernn checkpoint (no weights or data transform in it)",
    )
    where = f"{option}={path}"
    for entry in STORED_ENTRIES:
        if state.get(entry) is not None:
            state[entry] = stored_settings(state[entry], f"{where}: its {entry}")
    _check_run_name(state.get("pricernn_run"), where)
    try:
        model = RecurrentForecaster(**state["hyper_parameters"])
    except UserError as err:
        raise UserError(f"{where}: its model settings are not pricernn's ({err})") from None
    except Exception as err:  # hand-edited hyperparameters
        raise UserError(f"{where}: not a readable pricernn checkpoint ({first_line(err)})") from err
    fit_weights(model, state["state_dict"], where)
    check_derived_version(model.hparams.transform, where)
    return state, model


# What pricernn stores beside the weights: settings, read as plain data only (Lightning's own entries, the loops,
# optimiser and callback states, hold tensors and are read by Lightning alone)
STORED_ENTRIES = ("hyper_parameters", "pricernn_config", "pricernn_run", "pricernn_forecast", "pricernn_intervals")
# Hydra's instantiation keys: a stored file naming one would have the project build what the file says
INSTANTIATION_KEYS = ("_target_", "_args_", "_partial_", "_recursive_", "_convert_")
# The classes pricernn's own conf/ builds for callbacks and the logger. Checkpoints written before stored configs
# became data held them (at callbacks.<name>._target_ and logger._target_); there they are dropped, unused: what is
# built always comes from the config of the command that runs. Any other target is refused.
LEGACY_TARGETS = frozenset(
    {
        "pytorch_lightning.callbacks.ModelCheckpoint",
        "pytorch_lightning.callbacks.EarlyStopping",
        "pytorch_lightning.callbacks.LearningRateMonitor",
        "pytorch_lightning.callbacks.TQDMProgressBar",
        "pricernn.callbacks.DivergenceGuard",  # its place before the modules were grouped by stage
        "pytorch_lightning.loggers.TensorBoardLogger",
    }
)
_SCALARS = (str, int, float, bool, type(None))


def stored_settings(value: Any, where: str, key: str = "") -> Any:
    """``value`` (settings read from a checkpoint or another stored file) as plain data, or one UserError line
    naming the key: dictionaries with text keys, lists, text, numbers, booleans and None only; no Hydra
    instantiation key (``_target_``, ``_args_``, ``_partial_``, ...), which would name code to build; no
    interpolation (``${...}``), which resolvers such as ``oc.create`` or ``oc.env`` would evaluate. Configs are
    stored resolved, so a genuine one has none. The one exception: a legacy ``_target_`` naming a class of
    pricernn's own conf/ (:data:`LEGACY_TARGETS`), which is dropped. Returns a copy without it."""
    if isinstance(value, dict):
        out = {}
        for name, item in value.items():
            check(isinstance(name, str), f"{where}: holds a key {name!r} that is not text; a checkpoint holds settings")
            path = f"{key}.{name}" if key else name
            # each dotted part: a key "early_stopping._target_" becomes one when the config is rebuilt from it
            if any(part.startswith("_") and part.endswith("_") and len(part) > 2 for part in name.split(".")):
                if name == "_target_" and item in LEGACY_TARGETS and _legacy_place(path):
                    continue
                raise UserError(
                    f"{where}: sets {path}={item}, which names code to run; a stored setting is data, never code "
                    f"(Hydra's {', '.join(INSTANTIATION_KEYS)} are refused): do not use this file"
                )
            out[name] = stored_settings(item, where, path)
        return out
    if isinstance(value, list | tuple):
        return type(value)(stored_settings(item, where, f"{key}[{i}]") for i, item in enumerate(value))
    check(
        isinstance(value, _SCALARS),
        f"{where}: {key} holds a {type(value).__name__}, not a plain setting (text, number, list, mapping)",
    )
    check(
        not (isinstance(value, str) and "${" in value),
        f"{where}: {key}={value} is an interpolation, which a stored setting may not hold (it would be evaluated): "
        "do not use this file",
    )
    return value


def _legacy_place(path: str) -> bool:
    parts = path.split(".")
    return parts == ["logger", "_target_"] or (len(parts) == 3 and parts[0] == "callbacks")


def _check_run_name(run: Any, where: str) -> None:
    """The TensorBoard run a resumed run continues: a name and a version, each a relative path with no ``..``,
    inside the logger's folder (a stored ``name=../../x`` would write logs anywhere)."""
    if run is None:
        return
    check(
        isinstance(run, dict) and set(run) <= {"name", "version"},
        f"{where}: its pricernn_run holds {show_value(sorted(run) if isinstance(run, dict) else run)}; "
        "only a TensorBoard name and version may be stored",
    )
    for name, text in run.items():
        parts = PurePath(str(text)).parts
        check(
            isinstance(text, str) and not PurePath(text).is_absolute() and ".." not in parts,
            f"{where}: its pricernn_run.{name}={text} would log outside the TensorBoard folder",
        )


def fit_weights(model: torch.nn.Module, weights: dict[str, Any], where: str) -> None:
    """Load ``weights`` into ``model``, or one UserError line: every parameter and buffer the model has, of its
    shape, and no other; every parameter finite (a model of NaN weights forecasts NaN), no buffer NaN."""
    own = model.state_dict()
    missing = [k for k in own if k not in weights]
    extra = [k for k in weights if k not in own]
    shapes = [
        f"{k} {tuple(weights[k].shape)} (the model's: {tuple(own[k].shape)})"
        for k in own
        if k in weights and torch.is_tensor(weights[k]) and weights[k].shape != own[k].shape
    ]
    shapes += [f"{k} is a {type(weights[k]).__name__}" for k in own if k in weights and not torch.is_tensor(weights[k])]
    problems = [f"{len(missing)} missing ({', '.join(missing[:3])})"] * bool(missing)
    problems += [f"{len(extra)} it has no use for ({', '.join(extra[:3])})"] * bool(extra)
    problems += [f"of other shapes: {', '.join(shapes[:3])}"] * bool(shapes)
    hp = model.hparams
    described = f"{hp.cell}, hidden_size {hp.hidden_size}, num_layers {hp.num_layers}, {hp.strategy}"
    check(not problems, f"{where}: its weights do not fit the model it describes ({described}): {'; '.join(problems)}")
    parameters = {name for name, _ in model.named_parameters()}
    for name, tensor in weights.items():
        if not torch.is_tensor(tensor) or not tensor.is_floating_point():
            continue
        # a parameter must be finite; a buffer may be inf (the best validation loss before the first validation)
        bad = int((~torch.isfinite(tensor) if name in parameters else torch.isnan(tensor)).sum())
        check(not bad, f"{where}: its weights are damaged: {name} holds {bad} NaN or infinite values")
    model.load_state_dict(weights)


def check_derived_version(transform: dict, where: str) -> None:
    """A model with derived inputs learnt them as its pricernn computed them: one whose formulas have changed since
    (pricernn.data.derived.VERSION) would be fed other inputs than it learnt, without a sign. Refused in one line."""
    derived = (transform.get("data") or {}).get("derived")
    version = transform.get("derived_version", 1)
    check(
        not derived or version == DERIVED_VERSION,
        f"{where}: its derived inputs (data.derived={show_value(derived)}) were computed by an earlier pricernn, "
        f"whose formulas differ from today's (version {version}, now {DERIVED_VERSION}); train it anew",
    )


def add_to_checkpoint(path: str | Path, entries: dict[str, Any]) -> None:
    """Add plain-data ``entries`` to a checkpoint file, written whole or not at all: what is fitted after
    training (the per-horizon combination) travels with the weights."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    state.update(entries)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    write_atomic(Path(path), buffer.getvalue())


def read_checkpoint(path: str | Path, option: str = "resume") -> dict[str, Any]:
    """A training checkpoint to resume from (or whose setup to re-run): its training state and its run's config
    must be in it, and the checkpoint files its callbacks' states name must lie in its own folder (a resumed run
    rewrites its best checkpoint, so a stored path elsewhere would have it write there)."""
    state = load_state(path, option)
    check("loops" in state, f"{option}={path}: not a pricernn training checkpoint (no training state in it)")
    check(
        isinstance(state.get("pricernn_config"), dict),
        f"{option}={path}: written by an older pricernn that did not store its run's settings; train anew",
    )
    folder = Path(str(path)).expanduser().resolve().parent
    for callback in (state.get("callbacks") or {}).values():
        if not isinstance(callback, dict) or "best_model_path" not in callback:
            continue
        named = [callback.get(k) for k in ("best_model_path", "kth_best_model_path", "last_model_path")]
        check(
            isinstance(callback.get("best_k_models") or {}, dict) and all(isinstance(f, str | None) for f in named),
            f"{option}={path}: its checkpoint callback's state is damaged (paths that are not text)",
        )
        named += list(callback.get("best_k_models") or {})
        outside = [str(f) for f in named if f and Path(str(f)).resolve().parent != folder]
        check(
            not outside,
            f"{option}={path}: its checkpoint callback's state names {outside[0] if outside else ''}, outside the "
            f"checkpoint's folder {folder}; resume from the folder the run wrote it in, or train anew",
        )
    return state


def flat(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"data": {"window": 60}}`` → ``{"data.window": 60}``."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict) and value:
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


# Keys added after checkpoints were first written, with the value that older runs had in effect.
ADDED_KEYS: dict[str, Any] = {"model.loss": "mse", "model.quantiles": [0.1, 0.5, 0.9], "model.symbol_embedding": 0}


def check_resumable(path: str, state: dict[str, Any], cfg: DictConfig, data_contract: dict[str, Any]) -> None:
    """The config must be the checkpoint's, up to :data:`RESUMABLE_CHANGES`, and the data must still split on the
    same dates (a file edited since would silently train on other rows). One line lists every difference."""
    check_derived_version(state["hyper_parameters"]["transform"], f"resume={path}")
    saved = {**ADDED_KEYS, **flat(state["pricernn_config"])}  # an older checkpoint ran with what they mean now
    wanted = flat(config_record(cfg, data_contract))
    keys = sorted(set(saved) | set(wanted))
    differ = [
        f"{k}={show_value(saved.get(k))} (now {show_value(wanted.get(k))})"
        for k in keys
        if saved.get(k) != wanted.get(k) and not k.startswith(RESUMABLE_CHANGES)
    ]
    check(not differ, f"resume={path}: the checkpoint was trained with {', '.join(differ)}; resume with its settings")
    epochs = saved.get("trainer.max_epochs"), wanted.get("trainer.max_epochs")
    check(
        saved.get("model.scheduler") != "cosine" or epochs[0] == epochs[1],
        f"resume={path}: model.scheduler=cosine anneals the learning rate over trainer.max_epochs={epochs[0]}; "
        f"with {epochs[1]} the resumed run would not follow the schedule of any uninterrupted run: train anew",
    )
    before, now = state["hyper_parameters"]["transform"].get("split_dates"), data_contract["split_dates"]
    check(
        before == now,
        f"resume={path}: the data changed since the checkpoint was written (test period {_period(before)}, "
        f"now {_period(now)}); resume on the same file, or train anew",
    )


def config_record(cfg: DictConfig, data_contract: dict[str, Any]) -> dict[str, Any]:
    """The run's config as checkpoints store it: resolved, with the data settings as the data module used them
    (the file as an absolute path, so the same run compares equal from any directory), and as data only: Hydra's
    instantiation keys (what the callbacks and the logger are built from) are left out, so a stored config never
    names code (:func:`stored_settings` refuses one that does)."""
    record = OmegaConf.to_container(cfg, resolve=True)
    record["data"] = {**record["data"], **data_contract["data"]}
    return _without_instantiation_keys(record)


def _without_instantiation_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_instantiation_keys(v) for k, v in value.items() if k not in INSTANTIATION_KEYS}
    return [_without_instantiation_keys(v) for v in value] if isinstance(value, list) else value


def given_keys(task_overrides: list[str], section: str | None = None) -> set[str]:
    """The keys set explicitly on the command line: every dotted key, or those of ``section`` without its
    prefix (``data.path=x.csv`` → ``path``). Group choices (``model=gru``) are not keys and are left out."""
    keys = {o.split("=", 1)[0].lstrip("+~") for o in task_overrides}
    keys = {k for k in keys if "." in k or k not in GROUPS}
    if section is None:
        return keys
    return {k.split(".", 1)[1] for k in keys if k.startswith(f"{section}.")}


# What a re-run takes from the machine it runs on, never from the checkpoint: where it logs and writes (a stored
# checkpoint filename of "/elsewhere/x" or "../x" would write there)
LOCAL_KEYS = ("logger", "resume", "threads")
LOCAL_NAMES = ("dirpath", "filename")


def config_from_checkpoint(cfg: DictConfig, ckpt: str, task_overrides: list[str]) -> DictConfig:
    """The config of the run behind ``ckpt``, with the keys given on the command line taken from ``cfg`` (and
    keys the run did not have, such as a backtest's ``folds``): the same setup, re-run. Only plain values of keys
    ``cfg`` knows are taken from the checkpoint (:func:`stored_settings`); what is built (callbacks, logger) and
    where the run writes (``logger``, checkpoint folders and file names) come from ``cfg``. A group choice
    (``model=gru``) would replace a whole section of that run, so it is refused rather than half applied."""
    for override in task_overrides:
        key = override.split("=", 1)[0].lstrip("+~")
        check(
            key not in GROUPS,
            f"{override}: with ckpt= the run's own settings are used, not a group's; change single keys instead "
            "(e.g. trainer.max_epochs=3, model.hidden_size=32)",
        )
    given = given_keys(task_overrides)
    saved = flat(read_checkpoint(ckpt, "ckpt")["pricernn_config"])
    known = set(flat(_without_instantiation_keys(OmegaConf.to_container(cfg)))) | set(key_names(TrainConfig))
    for key in saved:
        check(
            key in known or key.startswith(LOCAL_KEYS),
            f"ckpt={ckpt}: its stored config has {key}, a key this pricernn does not know; train anew",
        )
    merged = cfg.copy()
    for key, value in saved.items():
        if key.startswith(LOCAL_KEYS) or key.rpartition(".")[2] in LOCAL_NAMES or _under(key, given):
            continue
        OmegaConf.update(merged, key, value, merge=False, force_add=True)
    merged.resume = None
    return merged


def _under(key: str, given: set[str]) -> bool:
    """``key`` was given on the command line, or a section above it was (``callbacks.early_stopping=null``)."""
    return any(key == g or key.startswith(f"{g}.") for g in given)


def _period(split_dates: dict | None) -> str:
    test = (split_dates or {}).get("test")
    return f"{test[0]} .. {test[1]}" if test else "unknown"
