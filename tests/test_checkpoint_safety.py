"""A checkpoint from a stranger runs nothing: crafted settings, damaged weights and stored run records are refused
in one line (exit 2) by every entry point, before anything is written (pricernn.checkpoints)."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from conftest import CONF_DIR
from hydra import compose, initialize_config_dir

from pricernn import UserError
from pricernn.checkpoints import LEGACY_TARGETS, config_from_checkpoint, load_model, load_state
from pricernn.reporting.leaderboard import collect
from pricernn.tasks.backtest import backtest
from pricernn.tasks.predict import forecast_history
from pricernn.tasks.train import train

RUN = ["debug=fast", "data.window=10", "model.hidden_size=4", "model.num_layers=1", "evaluation.steps=2"]


class Touch:
    """A pickle that starts a process when loaded (``torch.load(weights_only=False)``): what a stored target
    ``torch.load`` would run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _compose(name: str, tb: Path | None, *overrides: str):
    """A script's config as Hydra composes it; TensorBoard logs under ``tb`` (predict.py logs none)."""
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose(name, overrides=[f"logger.save_dir={tb}"] * (tb is not None) + list(overrides))


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> dict[str, Path]:
    """A trained tiny run, a victim file, the path of a marker a started process would create, and a pickle that
    would create it."""
    d = tmp_path_factory.mktemp("safety")
    train(_compose("train", d / "tb", *RUN), d / "run")
    (d / "victim.txt").write_text("precious\n")
    with open(d / "payload.pt", "wb") as f:
        pickle.dump(Touch(d / "marker"), f)
    return {"dir": d, "last": d / "run" / "checkpoints" / "last.ckpt", "victim": d / "victim.txt"}


def craft(lab: dict[str, Path], name: str, edit) -> Path:
    """A copy of the run's last.ckpt, in its own folder, edited: loads with ``weights_only=True`` like any other."""
    state = torch.load(lab["last"], map_location="cpu", weights_only=True)
    edit(state)
    path = lab["last"].parent / f"{name}.ckpt"
    torch.save(state, path)
    return path


# A stored value where the config holds null may be a whole mapping, and Hydra builds a _target_ nested in a
# callback's arguments: DivergenceGuard(every=open(victim, "w")) truncated the file before this was refused.
def opens_victim(lab):
    return lambda s: s["pricernn_config"]["callbacks"]["divergence"].update(
        every={"_target_": "builtins.open", "file": str(lab["victim"]), "mode": "w"}
    )


def loads_payload(lab):
    return lambda s: s["pricernn_config"]["callbacks"]["divergence"].update(
        every={"_target_": "torch.load", "f": str(lab["dir"] / "payload.pt"), "weights_only": False}
    )


def untouched(lab) -> bool:
    return lab["victim"].read_text() == "precious\n" and not (lab["dir"] / "marker").exists()


def _entry_points(lab, ckpt: Path, out: Path):
    """Each entry point's task, as its script calls it, on ``ckpt``."""
    tb = lab["dir"] / "tb"
    return {
        "predict": lambda: forecast_history(_compose("predict", None, f"ckpt={ckpt}"), out / "predict"),
        "backtest": lambda: backtest(_compose("backtest", tb, f"ckpt={ckpt}", "folds=1"), out / "backtest", []),
        "resume": lambda: train(_compose("train", tb, *RUN, f"resume={ckpt}"), out / "resume"),
    }


@pytest.mark.parametrize(
    "name, edit, needle",
    [
        ("open", opens_victim, "sets callbacks.divergence.every._target_=builtins.open, which names code to run"),
        ("load", loads_payload, "sets callbacks.divergence.every._target_=torch.load"),
        ("args", lambda lab: lambda s: s["pricernn_config"]["logger"].update(_args_=["x"]), "sets logger._args_=["),
        (
            "dotted key",  # rebuilt key by key, "early_stopping._target_" would become a target
            lambda lab: (
                lambda s: s["pricernn_config"]["callbacks"].update({"early_stopping._target_": "builtins.open"})
            ),
            "sets callbacks.early_stopping._target_=builtins.open",
        ),
        (
            "run record",  # a resumed run's TensorBoard name and version are passed to the logger as keywords
            lambda lab: lambda s: s["pricernn_run"].update(_target_="builtins.open", file=str(lab["victim"])),
            "its pricernn_run: sets _target_=builtins.open",
        ),
        (
            "run outside",
            lambda lab: lambda s: s["pricernn_run"].update(version="../../../elsewhere"),
            "pricernn_run.version=../../../elsewhere would log outside the TensorBoard folder",
        ),
        (
            "interpolation",  # oc.create would build a mapping, _target_ and all, when the config is resolved
            lambda lab: (
                lambda s: s["pricernn_config"]["callbacks"].update(
                    lr_monitor="${oc.create:{_target_:builtins.open,file:" + str(lab["victim"]) + ",mode:w}}"
                )
            ),
            "callbacks.lr_monitor=${oc.create:",
        ),
        (
            "in the model settings",
            lambda lab: lambda s: s["hyper_parameters"]["transform"]["data"].update(_target_="os.system"),
            "its hyper_parameters: sets transform.data._target_=os.system",
        ),
        (
            "best checkpoint elsewhere",  # a resumed run rewrites its best checkpoint
            lambda lab: (
                lambda s: next(c for c in s["callbacks"].values() if "best_model_path" in c).update(
                    best_model_path=str(lab["dir"] / "someone_elses.ckpt")
                )
            ),
            "outside the checkpoint's folder",
        ),
        (
            "weights of another shape",
            lambda lab: lambda s: s["hyper_parameters"].update(hidden_size=8),
            "its weights do not fit the model it describes (lstm, hidden_size 8, num_layers 1, recursive): of other "
            "shapes: nets.recursive.rnn.weight_ih_l0 (16, 1) (the model's: (32, 1))",
        ),
        (
            "a number for a tensor",
            lambda lab: lambda s: s["state_dict"].update({"nets.recursive.head.bias": 5}),
            "of other shapes: nets.recursive.head.bias is a int",
        ),
        (
            "missing weights",
            lambda lab: lambda s: s["state_dict"].pop("nets.recursive.head.bias"),
            "1 missing (nets.recursive.head.bias)",
        ),
        (
            "NaN weights",
            lambda lab: lambda s: s["state_dict"]["nets.recursive.head.weight"].fill_(float("nan")),
            "its weights are damaged: nets.recursive.head.weight holds 4 NaN or infinite values",
        ),
    ],
)
def test_every_entry_point_refuses_a_crafted_checkpoint_before_running_or_writing_anything(
    lab, tmp_path, name, edit, needle
):
    ckpt = craft(lab, name.replace(" ", "_"), edit(lab))
    for entry, task in _entry_points(lab, ckpt, tmp_path).items():
        if name == "best checkpoint elsewhere" and entry == "predict":
            continue  # predict.py reads no callback state: nothing of it is used to write
        with pytest.raises(UserError) as caught:
            task()
        message = str(caught.value)
        assert needle in message and "\n" not in message, (entry, message)
        assert untouched(lab), entry
        assert not list(tmp_path.iterdir()), (entry, "wrote", list(tmp_path.rglob("*")))


def test_predict_writes_no_forecast_that_is_not_finite(lab, tmp_path):
    ckpt = craft(
        lab, "nan_scale", lambda s: s["hyper_parameters"]["transform"]["normalizer"].update(y_scale=float("nan"))
    )
    with pytest.raises(UserError, match=r"its forecast is not finite at h=1,2,3,4,5\.\.\. \(damaged normaliser"):
        forecast_history(_compose("predict", None, f"ckpt={ckpt}"), tmp_path / "predict")
    assert not list(tmp_path.iterdir())


def test_the_scripts_end_a_crafted_checkpoint_with_one_line_and_exit_2(lab, tmp_path, start_script):
    """Through the command lines, all started at once: a stored target that would truncate a file, one that would
    start a process, and NaN weights for predict.py (no forecast.csv may be written)."""
    opened, loaded = craft(lab, "cli_open", opens_victim(lab)), craft(lab, "cli_load", loads_payload(lab))
    nan = craft(lab, "cli_nan", lambda s: s["state_dict"]["nets.recursive.head.bias"].fill_(float("inf")))
    cases = {
        "predict": ("predict.py", [f"ckpt={opened}"], "names code to run"),
        "backtest": (
            "backtest.py",
            [f"ckpt={loaded}", "folds=1"],
            "sets callbacks.divergence.every._target_=torch.load",
        ),
        "resume": ("train.py", [*RUN, f"resume={opened}"], "names code to run"),
        "predict nan": ("predict.py", [f"ckpt={nan}"], "holds 1 NaN or infinite values"),
    }
    running = {
        case: start_script(script, *args, f"hydra.run.dir={tmp_path / case}", cwd=tmp_path)
        for case, (script, args, _) in cases.items()
    }
    for case, proc in running.items():
        _, err = proc.communicate(timeout=240)
        assert proc.returncode == 2 and "Traceback" not in err, (case, err[-2000:])
        last = err.strip().splitlines()[-1]
        assert last.startswith("error: ") and cases[case][2] in last, (case, last)
    assert untouched(lab)
    assert not list(tmp_path.rglob("forecast.csv"))
    assert not (tmp_path / "resume" / "checkpoints").exists()


def test_stored_configs_hold_no_code_and_older_checkpoints_with_pricernn_s_own_targets_still_load(lab):
    saved = torch.load(lab["last"], map_location="cpu", weights_only=True)["pricernn_config"]
    assert "_target_" not in str(saved)  # what is built comes from the config that runs, never from the file
    assert saved["callbacks"]["early_stopping"]["patience"] == 5  # plain values stay: backtest ckpt= re-runs them
    # a checkpoint written before stored configs became data named the project's own classes: still read
    targets = {}
    for group in ("callbacks/default.yaml", "logger/tensorboard.yaml"):
        targets[group] = yaml.safe_load((Path(CONF_DIR) / group).read_text())
    for entry in targets["callbacks/default.yaml"].values():  # they were written before the modules' regroup
        entry["_target_"] = entry["_target_"].replace("pricernn.tasks.callbacks.", "pricernn.callbacks.")
    shipped = {c["_target_"] for c in targets["callbacks/default.yaml"].values()}
    assert shipped | {targets["logger/tensorboard.yaml"]["_target_"]} <= LEGACY_TARGETS

    def older(state):
        for key, entry in targets["callbacks/default.yaml"].items():
            state["pricernn_config"]["callbacks"][key]["_target_"] = entry["_target_"]
        state["pricernn_config"]["logger"]["_target_"] = targets["logger/tensorboard.yaml"]["_target_"]

    old = craft(lab, "older", older)
    assert load_state(old, "ckpt")["pricernn_config"] == saved
    cfg = _compose("backtest", lab["dir"] / "tb", f"ckpt={old}", "folds=1")
    rerun, now = config_from_checkpoint(cfg, str(old), []), config_from_checkpoint(cfg, str(lab["last"]), [])
    assert rerun == now and rerun.data.window == 10 and rerun.model.hidden_size == 4
    # built from the command's own config: the logger's folder and the callbacks' classes
    assert rerun.logger.save_dir == str(lab["dir"] / "tb")
    elsewhere = craft(lab, "elsewhere", lambda s: s["pricernn_config"]["callbacks"]["last_checkpoint"].update(
        filename=str(lab["dir"] / "victim"), dirpath=str(lab["dir"])))  # fmt: skip
    assert config_from_checkpoint(cfg, str(elsewhere), []).callbacks.last_checkpoint == now.callbacks.last_checkpoint
    assert now.callbacks.last_checkpoint.filename == "last" and now.callbacks.last_checkpoint.dirpath is None
    assert rerun.callbacks.lr_monitor._target_ == "pytorch_lightning.callbacks.LearningRateMonitor"


def test_compare_reads_a_run_directory_as_data_and_refuses_a_record_that_asks_to_build_objects(lab, tmp_path):
    sweep = tmp_path / "sweep"
    for job in ("0", "1"):
        (sweep / job / ".hydra").mkdir(parents=True)
        (sweep / job / ".hydra" / "overrides.yaml").write_text(f"- seed={job}\n")
        # run configs that name code: nothing pricernn reads from a run directory builds from them
        code = {"callbacks": {"x": {"_target_": "builtins.open", "file": str(lab["victim"]), "mode": "w"}}}
        for config in (sweep / job / "config.yaml", sweep / job / ".hydra" / "config.yaml"):
            config.write_text(yaml.safe_dump(code))
    assert len(collect(sweep)) == 2 and untouched(lab)
    (sweep / "1" / ".hydra" / "overrides.yaml").write_text(
        f'- !!python/object/apply:os.system ["touch {lab["dir"] / "marker"}"]\n'
    )
    with pytest.raises(UserError, match=r"1/.hydra/overrides.yaml: not a Hydra overrides record \(could not determine"):
        collect(sweep)
    assert untouched(lab)
    result = subprocess.run(
        [sys.executable, str(Path(CONF_DIR).parent / "scripts" / "compare.py"), str(sweep)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and result.stderr.strip().startswith("error: ") and untouched(lab), result.stderr


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (lambda f: f.update(center=[float("nan")] * len(f["shrink"])), "centres [nan,"),
        (lambda f: f.update(center=[0.0]), "centres [0.0]"),  # one centre for 10 horizons
        (lambda f: f.update(drift=float("inf")), "drift inf"),
    ],
)
def test_a_damaged_centre_or_drift_of_the_forecast_is_one_line(lab, tmp_path, edit, needle):
    state = torch.load(lab["last"].parent / "best.ckpt", map_location="cpu", weights_only=True)
    edit(state["pricernn_forecast"])
    torch.save(state, tmp_path / "damaged.ckpt")
    with pytest.raises(UserError, match=r"its pricernn_forecast is damaged") as caught:
        load_model(tmp_path / "damaged.ckpt")
    assert needle in str(caught.value), str(caught.value)
