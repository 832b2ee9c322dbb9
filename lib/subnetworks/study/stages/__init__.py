"""The study's stages as idempotent functions: each finds its run directory, skips a finished run and resumes an
unfinished one where it stopped. Notebooks call these; the run layer executes the notebooks."""

from ..grid import Run
from ..store import RunDir
from ..workspace import Workspace
from .data import load_data, run_data
from .overlap import run_overlap
from .prune import run_prune
from .transfer import run_transfer

__all__ = ["load_data", "run_data", "run_grid_run", "run_overlap", "run_prune", "run_transfer"]


def run_grid_run(ws: Workspace, run: Run) -> RunDir:
    """One run of the study's grid, here in this process (what its notebook does), e.g. to build a study in tests."""
    if run.stage == "data":
        return run_data(ws, run.task, run.lang)
    if run.stage == "prune":
        return run_prune(ws, run.task, run.lang, run.seed)
    if run.stage == "transfer":
        return run_transfer(ws, run.task, run.lang, run.level, run.seed)
    return run_overlap(ws, run.task)
