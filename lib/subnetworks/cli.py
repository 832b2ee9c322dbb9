"""``python -m subnetworks run|status|report PARAMS [--artifacts DIR] [--set key=value …]``."""

from __future__ import annotations

import argparse
import sys
from collections import Counter


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m subnetworks", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("run", "run every unfinished stage of the study, then render the report"),
        ("status", "show what is done, running, partial and left"),
        ("report", "re-render the report from the artefacts (trains nothing)"),
    ):
        p = sub.add_parser(name, help=text, description=text)
        p.add_argument("params", help="params file, e.g. params/demo.yaml")
        p.add_argument("--artifacts", default="", help="artefacts directory (default: runtime.artifacts of the params)")
        p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override a parameter, e.g. --set runtime.device=cpu (repeatable)")
        if name != "status":
            p.add_argument("--reports", default="", help="reports directory (default: runtime.reports_dir)")
        if name == "run":
            p.add_argument("--executor", choices=("local", "slurm"), default="",
                           help="local: here, one stage run after another; slurm: one Slurm job per stage run "
                                "(default: runtime.executor, which defaults to local)")
            p.add_argument("--wait", action="store_true", help="slurm: wait for the jobs and report how they ended")
    assets = sub.add_parser("smoke-assets", help="make the tiny model and data that params/smoke.yaml uses")
    assets.add_argument("--root", default=".cache/smoke", help="where to write them (default .cache/smoke)")
    assets.add_argument("--languages", nargs="+", default=["en", "ur", "zh"])
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from . import pipeline
    from .config import ConfigError
    from .pipeline import StageFailed
    from .executors import SlurmError
    from .store import ArtifactError, LockedError

    try:
        if args.command == "smoke-assets":
            from pathlib import Path

            from .smoke import make_smoke_assets

            for name, path in make_smoke_assets(Path(args.root), args.languages).items():
                print(f"{name}: {path}")
        elif args.command == "run":
            pipeline.run_study(args.params, args.artifacts, args.overrides, reports_dir=args.reports,
                               executor=args.executor, wait=args.wait)
        elif args.command == "status":
            rows = pipeline.status(args.params, args.artifacts, args.overrides)
            width = max(len(r["run"]) for r in rows)
            for r in rows:
                print(f"{r['run']:<{width}}  {r['state']:<8}  {r.get('detail', '')}".rstrip())
            print(", ".join(f"{n} {state}" for state, n in Counter(r["state"] for r in rows).items()))
        else:
            from .config import load_study
            from .stages import Context

            effective = pipeline.effective_params(args.params, args.artifacts, args.overrides)
            ctx = Context.create(load_study(effective), args.artifacts)
            with pipeline.SharedKernel() as kernel:
                print(pipeline.render_report(ctx, effective, kernel, args.reports))
    except (ConfigError, ArtifactError, LockedError, StageFailed, SlurmError, FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0
