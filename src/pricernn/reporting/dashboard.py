"""What TensorBoard shows of a run, so that the first screen compares runs:

- a few scalar tags (training curves from the model, the test headline and per-horizon curves from here; every
  figure stays in metrics.json);
- an HParams session: the sweepable values and a status that tells the truth (success, failure, or none while
  a run is interrupted and resumable);
- a custom-scalars layout that opens on the comparison;
- the test report, written once per finished run at its final training step.

Why separate event files: TensorBoard keeps the first value it reads for a session's status, and a report that
a resumed run writes again would otherwise appear twice. The report and the status therefore each live in an
event file of their own that is replaced, not appended to.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf
from tensorboard.compat.proto.summary_pb2 import Summary, SummaryMetadata
from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2
from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams

from pricernn.config.validate import CELLS, INTERVAL_METHODS, LOSSES, SCALERS, STRATEGIES, TARGET_TRANSFORMS

# The values a sweep varies, shown as HParams columns.
HPARAM_KEYS = {
    "model": ("cell", "hidden_size", "num_layers", "dropout", "lr", "strategy", "loss"),
    "data": ("target", "window", "batch_size", "scaler", "target_transform", "horizon", "derived"),
    "trainer": ("max_epochs",),
    "evaluation": ("interval_method",),
}
# TensorBoard shows five HParams columns and five metrics at first, the hparams marked "differs" first, each group
# by name. The five a sweep over this product's core questions varies are marked, so they are the ones on screen;
# whether values really differ is unknowable when a run starts (and the experiment is read from one run for all).
SHOWN_HPARAMS = ("data.window", "model.cell", "model.hidden_size", "model.lr", "model.num_layers")
CHOICES = {"model.cell": CELLS, "model.strategy": STRATEGIES, "data.scaler": SCALERS, "model.loss": LOSSES,
           "data.target_transform": TARGET_TRANSFORMS, "evaluation.interval_method": INTERVAL_METHODS}  # fmt: skip
# The HParams metrics, the first five on screen: price units and the tests that say whether a difference is real.
HPARAM_METRICS = (
    "test/rmse",
    "test/rmse_ratio_naive",
    "test/skill",
    "test/dm_pvalue",
    "val/rmse_best",
    "test/ic",
    "test/ic_pvalue",
    "test/directional_accuracy",
    "test/pt_pvalue",
    "test/mae",
    "test/mase",
    "test/rmse_ratio_ar",
    "test/rmse_ratio_naive_last_h",
    "test/shrink",
    "test/coverage_80",
    "test/width_80",
    "trade/sharpe",
    "trade/vs_hold_pvalue",
    "test/median_rmse_ratio",
    "test/share_beating_naive",
    "val/loss_best",
)
# The test headline: one point per run, at the run's final training step. Baselines are the same for every run
# on the same data: they are in the text tables (and naive's by-horizon curve, for the chart beside the model's).
HEADLINE = (
    "test/rmse",
    "test/mae",
    "test/mape",
    "test/mase",
    "test/skill",
    "test/rmse_ratio_naive",
    "test/rmse_ratio_ar",
    "test/rmse_ratio_naive_last_h",
    "test/dm_pvalue",
    "test/ic",
    "test/ic_pvalue",
    "test/move_ratio",
    "test/directional_accuracy",
    "test/pt_pvalue",
    "test/shrink",
    "test/coverage_80",
    "test/width_80",
    "test/coverage_95",
    "test/width_95",
    "trade/sharpe",
    "trade/vs_hold_pvalue",
    "test/median_rmse_ratio",
    "test/share_beating_naive",
)
# Per-horizon curves: one tag each, the horizon as the step, so one chart compares the horizon profile of runs.
BY_HORIZON = {
    "test/rmse_by_horizon": "test/h{h}/rmse",
    "naive/rmse_by_horizon": "naive/h{h}/rmse",
    "test/skill_by_horizon": "test/h{h}/skill",
    "test/shrink_by_horizon": "test/h{h}/shrink",
    "test/drift_bp_by_horizon": "test/h{h}/drift_bp",
    "test/move_bp_by_horizon": "test/h{h}/move_bp",
}
# The custom-scalars tab: the charts a comparison starts from (tags are regular expressions).
LAYOUT = {
    "pricernn: compare runs": {
        "loss, train and validation (scaler units)": ["Multiline", [r"^train/loss$", r"^val/loss$"]],
        "validation RMSE (price units)": ["Multiline", [r"^val/rmse$"]],
        "test RMSE by horizon, model and naive (price units)": [
            "Multiline",
            [r"^test/rmse_by_horizon$", r"^naive/rmse_by_horizon$"],
        ],
        "skill vs naive by horizon": ["Multiline", [r"^test/skill_by_horizon$"]],
        "weight on the model by horizon (1 - weight on the last price)": ["Multiline", [r"^test/shrink_by_horizon$"]],
        "mean move by horizon, forecasts and test period (bp a bar)": [
            "Multiline",
            [r"^test/drift_bp_by_horizon$", r"^test/move_bp_by_horizon$"],
        ],
    }
}
REPORT_SUFFIX, STATUS_SUFFIX = ".report", ".status"


def dataset_name(cfg: DictConfig) -> str:
    """The data a run learned, as a short name: the file's stem, and the symbol where a long file holds several
    series, or the target column where it is not Close (a wide file of one column per stock: sp500_stocks-AAPL);
    a panel by its stem, or its stem and the symbols it names (sp500_stocks-AAPL+MSFT, or -N for many)."""
    data = cfg.data
    stem = Path(str(data.path)).name.split(".")[0]
    if data.get("symbol"):
        return f"{stem}-{data.symbol}"
    symbols = data.get("symbols")
    if symbols == "all":
        return stem
    if symbols is not None:
        return f"{stem}-{'+'.join(map(str, symbols))}" if len(symbols) <= 3 else f"{stem}-{len(symbols)}"
    return stem if str(data.target) == "Close" else f"{stem}-{data.target}"


def curated_hparams(cfg: DictConfig) -> dict[str, Any]:
    """The HParams of a run: the data set's name, the seed and the sweepable keys of :data:`HPARAM_KEYS`."""
    params: dict[str, Any] = {"data": dataset_name(cfg), "seed": cfg.seed}
    for group, keys in HPARAM_KEYS.items():
        for key in keys:
            value = cfg[group].get(key)
            if OmegaConf.is_list(value) or isinstance(value, list):  # data.derived=[log_return,...]: one string
                value = ",".join(map(str, value)) or "none"
            params[f"{group}.{key}"] = "none" if value is None else value
    return params


def start_session(writer: SummaryWriter, cfg: DictConfig, run_dir: Path) -> None:
    """Open the run's HParams session (its values; the metrics are only named: TensorBoard reads their values from
    the scalar tags, so none is written with a placeholder), the custom-scalars layout, and the run directory."""
    params = curated_hparams(cfg)
    _, session_start, _ = hparams(params, {})
    writer.file_writer.add_summary(session_start)
    writer.file_writer.add_summary(_hparams_summary(metadata.EXPERIMENT_TAG, experiment=_experiment(params)))
    writer.add_custom_scalars(LAYOUT)
    writer.add_text("run/directory", f"`{Path(run_dir).resolve()}`", global_step=0)


def set_status(log_dir: str | Path, status: str | None, note: str) -> None:
    """The run's HParams status, ``"success"``, ``"failure"`` or None (interrupted: TensorBoard shows "unknown"
    until a resumed run ends), and ``note`` as the text ``run/status``. Replaces any earlier status."""
    for old in Path(log_dir).glob(f"events.out.tfevents.*{STATUS_SUFFIX}"):
        old.unlink()
    with SummaryWriter(str(log_dir), filename_suffix=STATUS_SUFFIX) as writer:
        writer.add_text("run/status", note)
        if status is not None:
            code = {"success": "STATUS_SUCCESS", "failure": "STATUS_FAILURE"}[status]
            info = plugin_data_pb2.SessionEndInfo(status=api_pb2.Status.Value(code), end_time_secs=time.time())
            writer.file_writer.add_summary(_hparams_summary(metadata.SESSION_END_INFO_TAG, session_end_info=info))


def _experiment(params: dict[str, Any]) -> api_pb2.Experiment:
    """The HParams columns in :data:`HPARAM_KEYS`' order with their types (and choices, where the schema has
    them), the :data:`SHOWN_HPARAMS` marked to be shown first, and the metrics of :data:`HPARAM_METRICS`."""
    infos = []
    for name, value in params.items():
        kind = "DATA_TYPE_STRING" if isinstance(value, str) else "DATA_TYPE_FLOAT64"
        info = api_pb2.HParamInfo(name=name, type=api_pb2.DataType.Value(kind), differs=name in SHOWN_HPARAMS)
        info.domain_discrete.extend(CHOICES.get(name, ()))
        infos.append(info)
    metrics = [api_pb2.MetricInfo(name=api_pb2.MetricName(tag=tag)) for tag in HPARAM_METRICS]
    return api_pb2.Experiment(hparam_infos=infos, metric_infos=metrics)


def _hparams_summary(tag: str, **content: Any) -> Summary:
    """A summary the HParams plugin reads: ``content`` is one field of its plugin data (experiment, session end)."""
    data = plugin_data_pb2.HParamsPluginData(version=metadata.PLUGIN_DATA_VERSION, **content)
    plugin = SummaryMetadata.PluginData(plugin_name=metadata.PLUGIN_NAME, content=data.SerializeToString())
    return Summary(value=[Summary.Value(tag=tag, metadata=SummaryMetadata(plugin_data=plugin))])


def write_report(
    log_dir: str | Path,
    metrics: dict[str, Any],
    step: int,
    texts: dict[str, str],
    images: dict[str, np.ndarray],
) -> None:
    """The test report of a finished run, at its final training step ``step``: the headline scalars, the
    per-horizon curves (step = horizon), ``texts`` (markdown) and ``images`` (H, W, 3). Replaces the report of an
    earlier finish of the same run (a resumed run that trained on), so every figure appears once."""
    for old in Path(log_dir).glob(f"events.out.tfevents.*{REPORT_SUFFIX}"):
        old.unlink()
    with SummaryWriter(str(log_dir), filename_suffix=REPORT_SUFFIX) as writer:
        for tag in HEADLINE:
            if _finite(metrics.get(tag)):  # n/a figures (null in metrics.json) are not drawn
                writer.add_scalar(tag, metrics[tag], global_step=step)
        steps = int(metrics.get("eval/steps") or 0)
        for tag, key in BY_HORIZON.items():
            for h in range(1, steps + 1):
                if _finite(metrics.get(key.format(h=h))):
                    writer.add_scalar(tag, metrics[key.format(h=h)], global_step=h)
        for tag, text in texts.items():
            writer.add_text(tag, text, global_step=step)
        for tag, pixels in images.items():
            writer.add_image(tag, pixels, global_step=step, dataformats="HWC")


def report_texts(
    metrics: dict[str, Any], horizons: pd.DataFrame, summary: str, names: dict[str, str]
) -> dict[str, str]:
    """The report's tables as text: the printed summary, the next-step errors of the model and every baseline
    (``names``: metric prefix → label; figures that are the same in every run on the same data are here, not
    hundreds of scalar tags) and the per-horizon table (horizons.csv)."""
    keys = ("rmse", "mae", "mape", "mase", "skill", "directional_accuracy")
    rows = [{"forecast": label, **{k: metrics.get(f"{name}/{k}") for k in keys}} for name, label in names.items()]
    return {
        "report/summary": "```\n" + summary + "\n```",
        "report/next_step": markdown_table(rows),
        "report/horizons": markdown_table(horizons.to_dict("records")),
    }


def markdown_table(rows: list[dict[str, Any]], digits: int = 4) -> str:
    """Rows of equal keys as a markdown table (TensorBoard's text tab renders it), numbers to ``digits``
    significant digits and n/a as "–"."""
    if not rows:
        return ""
    columns = list(rows[0])

    def cell(value: Any) -> str:
        if isinstance(value, float | np.floating):
            return f"{value:.{digits}g}" if _finite(value) else "–"
        return "–" if value is None else str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row[c]) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def _finite(value: Any) -> bool:
    return isinstance(value, int | float | np.floating) and bool(np.isfinite(value))
