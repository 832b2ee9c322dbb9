"""``python -m subnetworks run|status|report|budget PARAMS [--artifacts DIR] [--set key=value …]``."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from ..demo.smoke import make_smoke_assets
from ..spec import ConfigError, load_study
from ..study.layout import Layout
from ..study.store import ArtifactError, LockedError
from .budget import run_budget
from .cost import grid_cost
from .kernel import SharedKernel
from .local import run_study
from .publish import publish_results, render_report
from .slurm_queue import SlurmError
from .slurm_submit import grid_summary
from .stage_runs import StageFailed, stage_runs
from .status import controls_lines, status, time_left_line
from .study_params import open_study


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m subnetworks", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("run", "run every unfinished stage of the study, then render the report"),
        ("status", "show what is done, running, partial and left"),
        ("report", "re-render the report from the artefacts (trains nothing)"),
        ("budget", "the training-budget curve: prune and overlap at each budget of budget.points, then its report"),
    ):
        p = sub.add_parser(name, help=text, description=text)
        p.add_argument("params", help="params file, e.g. params/demo.yaml")
        p.add_argument("--artifacts", default="", help="artefacts directory (default: runtime.artifacts of the params)")
        p.add_argument(
            "--set",
            dest="overrides",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="override a parameter, e.g. --set runtime.device=cpu (repeatable)",
        )
        if name != "status":
            p.add_argument("--reports", default="", help="reports directory (default: runtime.reports_dir)")
        if name == "run":
            p.add_argument(
                "--executor",
                choices=("local", "slurm"),
                default="",
                help="local: here, one stage run after another; slurm: one Slurm job per stage run "
                "(default: runtime.executor, which defaults to local)",
            )
            p.add_argument("--wait", action="store_true", help="slurm: wait for the jobs and report how they ended")
    cost = sub.add_parser(
        "cost",
        help="optimiser steps and jobs of the study's grid, before it runs",
        description="optimiser steps and jobs of the study's grid, before it runs",
    )
    cost.add_argument("params", help="params file, e.g. params/paper.yaml")
    cost.add_argument("--artifacts", default="", help="artefacts directory (finished data stages give measured sizes)")
    cost.add_argument(
        "--seconds-per-example",
        type=float,
        default=0.0,
        help="training seconds per example at the study's sequence length (e.g. from benchmarks/): adds device hours",
    )
    assets = sub.add_parser("smoke-assets", help="make the tiny model and data that params/smoke.yaml uses")
    assets.add_argument("--root", default=".cache/smoke", help="where to write them (default .cache/smoke)")
    assets.add_argument("--languages", nargs="+", default=["en", "ur", "zh"])
    return parser


def _print_cost(params: str, artifacts: str, seconds_per_example: float) -> None:
    layout = Layout(load_study(params), artifacts)
    jobs = grid_summary(stage_runs(layout, Path(params)))
    print(
        f"{jobs['jobs']} Slurm jobs (stage runs and the report) in {jobs['sbatch_submissions']} submissions: "
        f"{jobs['per_stage']}"
    )
    print(
        f"{'stage':<9} {'task':<6} {'runs':>5} {'steps':>12} {'examples':>14}"
        + ("  hours" if seconds_per_example else "")
    )
    for c in grid_cost(layout):
        steps = f"{c.steps:,}" if c.steps is not None else "unknown"
        examples = f"{c.examples:,}" if c.examples is not None else "unknown"
        hours = f"  {c.examples * seconds_per_example / 3600:,.0f}" if seconds_per_example and c.examples else ""
        note = f"  (training size of {', '.join(c.unknown)} known after the data stage)" if c.steps is None else ""
        print(f"{c.stage:<9} {c.task:<6} {c.runs:>5} {steps:>12} {examples:>14}{hours}{note}")


def _print_status(params: str, artifacts: str, overrides: list[str]) -> None:
    study = load_study(params, overrides)
    for line in controls_lines(study):
        print(line)
    rows = status(params, artifacts, overrides)
    width = max(len(r["run"]) for r in rows)
    for r in rows:
        print(f"{r['run']:<{width}}  {r['state']:<8}  {r.get('detail', '')}".rstrip())
    left = time_left_line(rows, study.runtime.workers)
    if left:
        print(left)
    print(", ".join(f"{n} {state}" for state, n in Counter(r["state"] for r in rows).items()))


def _report(params: str, artifacts: str, overrides: list[str], reports: str) -> None:
    effective, study, layout = open_study(params, artifacts, overrides)
    with SharedKernel() as kernel:
        html = render_report(layout, effective, kernel, reports)
    publish_results(study, html)
    print(html)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "smoke-assets":
            for name, path in make_smoke_assets(Path(args.root), args.languages).items():
                print(f"{name}: {path}")
        elif args.command == "run":
            run_study(
                args.params,
                args.artifacts,
                args.overrides,
                reports_dir=args.reports,
                executor=args.executor,
                wait=args.wait,
            )
        elif args.command == "cost":
            _print_cost(args.params, args.artifacts, args.seconds_per_example)
        elif args.command == "status":
            _print_status(args.params, args.artifacts, args.overrides)
        elif args.command == "budget":
            run_budget(args.params, args.artifacts, args.overrides, reports_dir=args.reports)
        else:
            _report(args.params, args.artifacts, args.overrides, args.reports)
    except (ConfigError, ArtifactError, LockedError, StageFailed, SlurmError, FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # after FileNotFoundError above: a full disk, a file size limit, an unwritable path
        print(
            f"error: cannot write {err.filename or 'an artefact'}: {err.strerror or err}: free space there or "
            "choose another --artifacts",
            file=sys.stderr,
        )
        return 2
    return 0
