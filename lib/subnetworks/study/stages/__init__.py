"""The study's stages as idempotent functions: each finds its run directory, skips a finished run and resumes an
unfinished one where it stopped. Notebooks call these; the run layer executes the notebooks."""

from .data import load_data, run_data
from .overlap import run_overlap
from .prune import run_prune
from .transfer import run_transfer

__all__ = ["load_data", "run_data", "run_overlap", "run_prune", "run_transfer"]
