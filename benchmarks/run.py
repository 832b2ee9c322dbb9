"""Run every benchmark, print the table, and write it (markdown + JSON) with a record of the machine.

    python benchmarks/run.py                      # full run on the demo and mBERT shapes (~10 min on 2 cores)
    python benchmarks/run.py --quick --out /tmp/r.md   # tiny stand-in models, seconds; what the test runs
    python benchmarks/run.py --only step,files --models mbert
    python benchmarks/run.py --only trainer --threads 1 --out /tmp/trainer.md   # finetune vs transformers' Trainer

Every figure is a ratio of two measurements taken in this run (medians over repeats, warm-up dropped).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the ``benchmarks`` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import REPO, Row, load_average, machine  # noqa: E402

BENCHES = ("step", "trainer", "prune", "overlap", "files", "pipeline")
FULL = dict(
    step_repeats=3, step_warmup=1, batch=8, seq=128, trainer_steps=10, prune_repeats=2, overlap_repeats=2, bool_pairs=3
)
QUICK = dict(
    step_repeats=1, step_warmup=1, batch=2, seq=16, trainer_steps=3, prune_repeats=1, overlap_repeats=1, bool_pairs=1
)


def _fmt_ratio(row: Row) -> str:
    if row.ratio is None:
        return "—"
    return f"{row.ratio:.3f}" if row.ratio >= 0.001 else f"{row.ratio:.2e}"


def _fmt_met(row: Row) -> str:
    return {True: "met", False: "**missed**", None: "—"}[row.met]


def table(rows: list[Row]) -> str:
    lines = ["| # | Benchmark | Model | Ours | Baseline | Ratio | Target | Met |", "|---|---|---|---|---|---|---|---|"]
    for i, r in enumerate(rows, 1):
        lines.append(
            f"| {i} | {r.title} | {r.model or '—'} | {r.ours} | {r.baseline or '—'} | {_fmt_ratio(r)} | "
            f"{r.target} | {_fmt_met(r)} |"
        )
    return "\n".join(lines)


def markdown(rows: list[Row], info: dict, settings: dict, quick: bool) -> str:
    out = ["# Benchmark results" + (" (--quick: tiny stand-in models, figures meaningless)" if quick else ""), ""]
    out += [
        "Each ratio compares two measurements taken in this run (medians over repeats, warm-up dropped, "
        "variants interleaved); details and raw timings are in the JSON file beside this one.",
        "",
        "## Machine",
        "",
    ]
    out += [f"- {k.replace('_', ' ')}: {v}" for k, v in info.items() if k != "argv" and v not in (None, "")]
    load, cores = info.get("load_average_at_start") or [0.0], info.get("cores") or 1
    if load[0] > 0.5 * cores:
        out += [
            "",
            f"**The machine was shared while this ran** (load average {load[0]} on {cores} cores at the start): "
            "absolute times are inflated and whole-step timings are noisy; paired figures (explained in the notes) "
            "are the robust ones.",
        ]
    out += [
        "",
        f"Command: `python {info.get('argv', '')}`",
        "",
        f"Settings: `{json.dumps(settings)}`",
        "",
        "## Results",
        "",
    ]
    out += [table(rows), "", "## Notes", ""]
    out += [f"{i}. {r.note}" for i, r in enumerate(rows, 1) if r.note]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--quick", action="store_true", help="tiny stand-in models: a few seconds, every row, no real figures"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="results file (.md; a .json beside it); default benchmarks/results-cpu.md",
    )
    parser.add_argument(
        "--pipeline-timings",
        default=str(REPO / "artifacts" / "demo" / "timings.json"),
        help="the pipeline's timings.json (its history in timings/ beside it is read too)",
    )
    parser.add_argument("--only", default=",".join(BENCHES), help=f"comma-separated subset of {','.join(BENCHES)}")
    parser.add_argument("--models", default="demo,mbert", help="comma-separated subset of demo,mbert")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    args = parser.parse_args(argv)

    import torch

    threads_before = torch.get_num_threads()
    if args.threads:
        torch.set_num_threads(args.threads)
    elif args.quick:  # tiny models gain nothing from threads, and lose a lot on a busy machine
        torch.set_num_threads(1)
    try:
        return _run(args, parser)
    finally:
        torch.set_num_threads(threads_before)


def _run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    only = [b for b in args.only.split(",") if b]
    unknown = sorted(set(only) - set(BENCHES))
    if unknown:
        parser.error(f"unknown benchmarks {unknown}: choose from {', '.join(BENCHES)}")
    models = [m for m in args.models.split(",") if m]
    if set(models) - {"demo", "mbert"}:
        parser.error("--models takes demo and/or mbert")
    out = args.out or (REPO / "benchmarks" / ("results-quick.md" if args.quick else "results-cpu.md"))
    settings = {**(QUICK if args.quick else FULL), "models": models, "benchmarks": only}
    s = settings
    info = machine()
    print(
        f"benchmarks on {info['cpu']} ({info['cores']} cores, torch {info['torch']}, {info['torch_threads']} threads), "
        f"load {info['load_average_at_start']}"
    )

    from benchmarks import bench_files, bench_overlap, bench_pipeline, bench_prune, bench_step, bench_trainer

    rows: list[Row] = []
    seconds_per_bench = {}
    for name in BENCHES:
        if name not in only:
            continue
        start = time.perf_counter()
        print(f"[{name}]", flush=True)
        if name == "step":
            rows += bench_step.run(models, args.quick, s["step_repeats"], s["step_warmup"], s["batch"], s["seq"])
        elif name == "trainer":
            rows += bench_trainer.run(
                models, args.quick, s["step_repeats"], s["step_warmup"], s["batch"], s["seq"], s["trainer_steps"]
            )
        elif name == "prune":
            rows += bench_prune.run(models, args.quick, s["prune_repeats"], 1)
        elif name == "overlap":
            rows += bench_overlap.run(models, args.quick, s["overlap_repeats"], 1, s["bool_pairs"])
        elif name == "files":
            rows += bench_files.run(models, args.quick)
        elif name == "pipeline":
            rows += bench_pipeline.run(args.pipeline_timings)
        seconds_per_bench[name] = round(time.perf_counter() - start, 1)
        print(f"  ({seconds_per_bench[name]} s)", flush=True)
    order = {bench: i for i, bench in enumerate(dict.fromkeys(r.bench for r in rows))}
    rows.sort(key=lambda r: order[r.bench])  # stable: models stay in the order given
    info["load_average_at_end"] = load_average()
    if args.quick:  # tiny models: the figures say nothing about the targets
        for row in rows:
            row.met = None
    info["benchmark_seconds"] = seconds_per_bench

    print()
    print(table(rows))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(markdown(rows, info, settings, args.quick))
    out.with_suffix(".json").write_text(
        json.dumps(
            {"machine": info, "settings": settings, "quick": args.quick, "rows": [r.as_dict() for r in rows]},
            indent=1,
            default=str,
        )
        + "\n"
    )
    print(f"\nwritten {out} and {out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
