"""report: the study report, built from finished artefacts only (nothing here trains or loads a model).

:func:`load_results` reads every finished run of a study through its grid into long data frames (one row per seed),
``tables`` derives the report's tables (means over seeds), ``figures`` draws one figure per ``plot_*`` function, and
the ``*_section`` functions put them together: they save each figure (PNG and PDF, no timestamps) under
``<reports_dir>/figures`` and each table (CSV) under ``<reports_dir>/tables``, and return a :class:`Section` that the
report notebook shows with :func:`show`. Above every figure sits one sentence on what Foroutan et al. (EMNLP 2022)
found (``paper.yaml``) and one on what this run found. ``summary_section`` writes ``summary.json`` and
``results.md``; :func:`build` does all of it. Torch-free: reads only the study's layout, grid and run files.
"""

from .figures import (
    plot_average_overlap,
    plot_controls,
    plot_overlap,
    plot_overlap_groups,
    plot_overlap_vs_transfer,
    plot_relative_change,
    plot_scores,
    plot_transfer,
)
from .load import Results, load_results
from .output import Report, SavedFigure, Section, open_report, show
from .paper import PAPER, Paper, load_paper
from .sections import (
    SECTIONS,
    build,
    controls_section,
    data_section,
    intro_section,
    overlap_groups_section,
    overlap_section,
    overlap_transfer_section,
    relative_change_section,
    scores_section,
    transfer_section,
)
from .summary import results_markdown, summary, summary_section
from .tables import (
    average_overlap_table,
    controls_table,
    correlation_table,
    overlap_by_group,
    overlap_matrices,
    overlap_pairs_table,
    overlap_vs_transfer_table,
    relative_change_table,
    score_table,
    stage_seconds_table,
    transfer_matrices,
    transfer_matrix,
    transfer_table,
)
from .text import finding, num, pct, sp

__all__ = [
    "PAPER",
    "Paper",
    "Report",
    "Results",
    "SECTIONS",
    "SavedFigure",
    "Section",
    "average_overlap_table",
    "build",
    "controls_section",
    "controls_table",
    "correlation_table",
    "data_section",
    "finding",
    "intro_section",
    "load_paper",
    "load_results",
    "num",
    "open_report",
    "overlap_by_group",
    "overlap_groups_section",
    "overlap_matrices",
    "overlap_pairs_table",
    "overlap_section",
    "overlap_transfer_section",
    "overlap_vs_transfer_table",
    "pct",
    "plot_average_overlap",
    "plot_controls",
    "plot_overlap",
    "plot_overlap_groups",
    "plot_overlap_vs_transfer",
    "plot_relative_change",
    "plot_scores",
    "plot_transfer",
    "relative_change_section",
    "relative_change_table",
    "results_markdown",
    "score_table",
    "scores_section",
    "show",
    "sp",
    "stage_seconds_table",
    "summary",
    "summary_section",
    "transfer_matrices",
    "transfer_matrix",
    "transfer_section",
    "transfer_table",
]
