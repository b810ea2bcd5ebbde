"""Measure what the framework costs over a bare PyTorch loop, in one process, on the embedded data.

    python scripts/benchmark.py [--quick | --tiny] [--cells rnn,lstm,gru] [--out outputs/benchmark.json]

Every figure is a ratio taken in this one run (ours vs a bare loop on the same model and data), so results from
noisy machines stay comparable. Sections: train (throughput per cell, fp32 and the fastest settings), windowing
(time and memory of building windows), inference (one-step and 30-step recursive), end_to_end (the default
``scripts/train.py`` run split into phases), sweep (a grid with the joblib launcher vs the sequential one), panel
(1,000 synthetic series x 5,000 days: window memory, training throughput against one series of the same length,
batched inference over every asset's last window), devices (per device, the CPU and a CUDA GPU when one is visible:
bare vs framework at batch 64 and 1024, and the bare loop's windows per second by batch size), machine. ``--quick``
finishes in one to two minutes; ``--tiny`` (for the test suite) checks that every figure is produced, with sizes too
small for the figures to mean anything.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch
from bench.costs import end_to_end, inference, sweep, windowing
from bench.machine import machine
from bench.panel import panel
from bench.throughput import bare_throughput, best_of, by_batch_size, framework_throughput, per_sample_throughput

from pricernn.data import PriceDataModule
from pricernn.models import CELLS

SHORT_RUNS = ["trainer.max_epochs=2", "trainer.limit_train_batches=20", "trainer.limit_val_batches=2",
              "evaluation.steps=1", "~callbacks.early_stopping"]  # fmt: skip
CUDA = ["cuda"] if torch.cuda.is_available() else []
SIZES = {  # per size: steps and rounds per throughput figure, windowing sizes, the end-to-end run, the sweep grid,
    # and the devices measured by batch size, with those batch sizes
    "full": {"steps": 100, "rounds": 3, "points": [10**5, 10**6, 10**7], "run": [],
             "grid": ["model=rnn,lstm,gru", "data.window=20,30", "model.hidden_size=16,32", *SHORT_RUNS],
             "devices": ["cpu", *CUDA], "batches": [64, 1024], "scaling": [16, 64, 256, 1024, 2048],
             "panel": {"series": 1000, "days": 5000, "steps": 200}},
    "quick": {"steps": 20, "rounds": 1, "points": [10**5, 10**6], "run": ["debug=tiny"],
              "grid": ["model=rnn,gru", *SHORT_RUNS],
              "devices": CUDA, "batches": [64, 1024], "scaling": [64, 256, 1024],
              "panel": {"series": 100, "days": 2000, "steps": 20, "rounds": 1}},  # about a minute and a half on 2 cores
    "tiny": {"steps": 5, "rounds": 1, "points": [10**4], "run": ["debug=fast"],
             "grid": ["model=rnn,gru", "debug=fast", "evaluation.steps=1", "~callbacks.early_stopping"],
             "devices": ["cpu"], "batches": [64, 128], "scaling": [16, 64],
             "panel": {"series": 4, "days": 300, "steps": 5, "rounds": 1}},
}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="fewer steps and sizes: one to two minutes")
    size.add_argument("--tiny", action="store_true", help="every figure, meaningless sizes: for the test suite")
    parser.add_argument("--cells", default="rnn,lstm,gru")
    parser.add_argument("--out", default="outputs/benchmark.json")
    args = parser.parse_args()
    size = "tiny" if args.tiny else "quick" if args.quick else "full"
    spec = SIZES[size]
    steps, rounds = spec["steps"], spec["rounds"]
    cells = args.cells.split(",")
    if unknown := [c for c in cells if c not in CELLS]:
        parser.error(f"--cells: unknown {', '.join(unknown)}; choose from {', '.join(CELLS)}")
    result: dict = {"machine": machine(), "size": size, "train": {}}

    dm = PriceDataModule()
    dm.setup()
    train_windows = dm.datasets["train"][torch.arange(len(dm.datasets["train"]))]
    x, y, _ = train_windows
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        for cell in cells:
            measures = {
                "bare_windows_per_s": lambda c=cell: bare_throughput(c, x, y, steps),
                "framework_windows_per_s": lambda c=cell: framework_throughput(c, steps, out, train_windows=len(x)),
                "dataloader_windows_per_s": lambda c=cell: per_sample_throughput(c, steps, out, train_windows),
                "bare_bf16_windows_per_s": lambda c=cell: bare_throughput(c, x, y, steps, bf16=True),
                "framework_bf16_windows_per_s": lambda c=cell: framework_throughput(
                    c, steps, out, "trainer.precision=bf16-mixed", train_windows=len(x)
                ),
            }
            row = best_of(measures, rounds)
            row["ratio"] = round(row["framework_windows_per_s"] / row["bare_windows_per_s"], 3)
            row["dataloader_ratio"] = round(row["dataloader_windows_per_s"] / row["bare_windows_per_s"], 3)
            row["bf16_ratio_vs_bare_fp32"] = round(row["framework_bf16_windows_per_s"] / row["bare_windows_per_s"], 3)
            result["train"][cell] = row
            print(f"train {cell}: {row}", flush=True)
        result["devices"] = {d: by_batch_size(d, cells, spec, out, x, y) for d in spec["devices"]}
        result["panel"] = panel(**spec["panel"], out=out / "panel")
    result["windowing"] = windowing(spec["points"])
    result["inference"] = inference("lstm", 5 if size == "tiny" else 30)
    result["end_to_end"] = end_to_end(spec["run"])
    result["sweep"] = sweep(spec["grid"])

    print(report(result))
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written: {path}")


def report(r: dict) -> str:
    lines = [f"pricernn benchmark on {r['machine']['cores']} cores, torch {r['machine']['torch']}"]
    lines.append(
        f"{'cell':6}{'bare':>9}{'ours':>9}{'ratio':>7}{'per-sample DL':>15}{'ratio':>7}{'ours bf16':>11}{'vs bare':>9}"
    )
    for cell, t in r["train"].items():
        lines.append(
            f"{cell:6}{t['bare_windows_per_s']:9.0f}{t['framework_windows_per_s']:9.0f}{t['ratio']:7.2f}"
            f"{t['dataloader_windows_per_s']:15.0f}{t['dataloader_ratio']:7.2f}{t['framework_bf16_windows_per_s']:11.0f}"
            f"{t['bf16_ratio_vs_bare_fp32']:9.2f}"
        )
    lines.append("(training windows per second, steady state; ratio = ours / bare fp32 loop)")
    for device, table in r["devices"].items():
        lines.append(f"{device} ({table['name']}): training windows/s by batch size, ours vs bare (ratio)")
        for cell, t in table.items():
            if cell == "name":
                continue
            scaling = "  ".join(f"{b}:{w:.0f}" for b, w in t["bare_windows_per_s_by_batch"].items())
            lines.append(
                f"{cell:6}"
                + "".join(
                    f"  b{b}: bare {t[b]['bare_windows_per_s']:.0f} ours {t[b]['framework_windows_per_s']:.0f} "
                    f"({t[b]['ratio']:.2f})"
                    for b in t
                    if b.isdigit()
                )
                + f"  | bare by batch {scaling}"
            )
    for size, w in r["windowing"].items():
        lines.append(
            f"windows over {size} points: {w['seconds'] * 1e3:.2f} ms, extra memory {w['memory_ratio']:.3f}x the series"
        )
    i = r["inference"]
    lines.append(
        f"inference: {i['test_windows']} one-step test predictions in {i['framework_one_step_s'] * 1e3:.1f} ms "
        f"(bare {i['bare_one_step_s'] * 1e3:.1f} ms); {i['recursive_steps']}-step recursive from "
        f"{i['recursive_origins']} origins in {i['recursive_s']:.3f} s, "
        f"{i['recursive_per_origin_step_vs_bare_one_step']:.2f}x bare per origin-step"
    )
    e = r["end_to_end"]
    lines.append(
        f"scripts/train.py ({e['config']}): {e['wall_s']:.1f} s = import+config {e['import_and_config_s']:.1f} + setup "
        f"{e['setup_s']:.1f} + fit {e['train_s']:.1f} + test {e['test_s']:.1f}; not fitting: {e['overhead_share']:.0%}"
    )
    p, pw = r["panel"], r["panel"]["windowing"]
    lines.append(
        f"panel of {p['series']} series x {p['days']} days: with its windows it takes {pw['memory_ratio']:.3f}x "
        f"the raw panel's memory (copies of the windows: {pw['materialised_ratio']:.0f}x); training "
        f"{p['train_panel_windows_per_s']:.0f} windows/s vs {p['train_one_series_windows_per_s']:.0f} for one series "
        f"as long (ratio {p['train_ratio']:.2f}); next step for all {p['inference']['assets']} assets in one batch "
        f"{p['inference']['batched_s'] * 1e3:.1f} ms, {p['inference']['speedup']:.0f}x faster than one call each"
    )
    w = r["sweep"]
    lines.append(
        f"sweep of {w['runs']} runs: sequential {w['sequential_s']:.1f} s, joblib {w['joblib_s']:.1f} s, "
        f"ratio {w['ratio']:.2f}"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
