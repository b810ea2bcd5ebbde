"""What a checkpoint carries beside the weights, and how it is read back safely.

Every checkpoint holds, as plain data (it is loaded with ``weights_only``, so it cannot run code):
- ``hyper_parameters.transform``: the fitted normaliser, the model's input columns and window, and the data
  contract (every ``data.*`` setting with the file as an absolute path, the training price range, the split
  dates) — ``predict.py`` forecasts from the data the model was trained on unless told otherwise;
- ``pricernn_config``: the run's whole resolved config, so ``resume=`` can refuse a config that differs and
  ``backtest.py ckpt=`` can re-run the same setup;
- ``pricernn_run``: the TensorBoard run to continue after a resume.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from pricernn.combination import Combination
from pricernn.config import show_value
from pricernn.data.derived import VERSION as DERIVED_VERSION
from pricernn.errors import UserError, check, first_line
from pricernn.files import write_atomic
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
    """A pricernn checkpoint's contents, read safely (``weights_only``), or one line naming ``option``."""
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
        isinstance(state, dict) and "transform" in (state.get("hyper_parameters") or {}) and "state_dict" in state,
        f"{option}={path}: not a pricernn checkpoint (no weights or data transform in it)",
    )
    return state


def load_model(ckpt: str | Path) -> tuple[RecurrentForecaster, Combination, dict | None]:
    """The model of a checkpoint, on the CPU, ready to forecast, and how its forecasts are combined per horizon
    (fitted on the validation period after training; a checkpoint without one forecasts as its network says)."""
    state = load_state(ckpt, "ckpt")
    try:
        model = RecurrentForecaster(**state["hyper_parameters"])
        model.load_state_dict(state["state_dict"])
    except Exception as err:  # hand-edited hyperparameters or weights of another shape
        raise UserError(f"ckpt={ckpt}: not a readable pricernn checkpoint ({first_line(err)})") from err
    check_derived_version(model.hparams.transform, f"ckpt={ckpt}")
    saved = state.get("pricernn_forecast")
    combination = Combination.from_dict(saved) if saved else Combination((model.primary,), (1.0,))
    return model.eval(), combination, state.get("pricernn_intervals")


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
    """A training checkpoint to resume from: its training state and its run's config must be in it."""
    state = load_state(path, option)
    check("loops" in state, f"{option}={path}: not a pricernn training checkpoint (no training state in it)")
    check(
        isinstance(state.get("pricernn_config"), dict),
        f"{option}={path}: written by an older pricernn that did not store its run's settings; train anew",
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
    (the file as an absolute path, so the same run compares equal from any directory)."""
    record = OmegaConf.to_container(cfg, resolve=True)
    record["data"] = {**record["data"], **data_contract["data"]}
    return record


def given_keys(task_overrides: list[str], section: str | None = None) -> set[str]:
    """The keys set explicitly on the command line: every dotted key, or those of ``section`` without its
    prefix (``data.path=x.csv`` → ``path``). Group choices (``model=gru``) are not keys and are left out."""
    keys = {o.split("=", 1)[0].lstrip("+~") for o in task_overrides}
    keys = {k for k in keys if "." in k or k not in GROUPS}
    if section is None:
        return keys
    return {k.split(".", 1)[1] for k in keys if k.startswith(f"{section}.")}


def config_from_checkpoint(cfg: DictConfig, ckpt: str, task_overrides: list[str]) -> DictConfig:
    """The config of the run behind ``ckpt``, with the keys given on the command line taken from ``cfg`` (and
    keys the run did not have, such as a backtest's ``folds``): the same setup, re-run. A group choice
    (``model=gru``) would replace a whole section of that run, so it is refused rather than half applied."""
    for override in task_overrides:
        key = override.split("=", 1)[0].lstrip("+~")
        check(
            key not in GROUPS,
            f"{override}: with ckpt= the run's own settings are used, not a group's; change single keys instead "
            "(e.g. trainer.max_epochs=3, model.hidden_size=32)",
        )
    given = given_keys(task_overrides)
    saved = read_checkpoint(ckpt, "ckpt")["pricernn_config"]
    merged = OmegaConf.merge(cfg, saved)
    for key in given:
        OmegaConf.update(merged, key, OmegaConf.select(cfg, key), merge=False)
    merged.resume = None
    return merged


def _period(split_dates: dict | None) -> str:
    test = (split_dates or {}).get("test")
    return f"{test[0]} .. {test[1]}" if test else "unknown"
