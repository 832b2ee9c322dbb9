"""The stages' progress bars: tqdm, shown in the notebook as usual, or handed to ``run``'s terminal.

When ``run`` follows a stage run on a terminal, it names a file in the kernel's :data:`PROGRESS_FILE` environment
variable (set before each notebook: run/kernel.py). The bars then draw into :class:`LatestLines`, a terminal of
one line per bar whose screen replaces that file at each refresh; ``run`` polls it (run/live.py). Run by hand, in
JupyterLab or by papermill, the variable is unset and the bars are tqdm.auto's.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path

from tqdm import std
from tqdm.auto import tqdm as auto_tqdm

PROGRESS_FILE = "SUBNETWORKS_PROGRESS_FILE"
# every bar of a stage run shares one terminal line there: counts and times, no bar graphics
LINE_FORMAT = "{desc}: {n_fmt}/{total_fmt} [{elapsed}<{remaining}{postfix}]"
_CONTROL = re.compile(r"(\r|\n|\x1b\[A)")  # all tqdm writes to move about: line start, line down, line up


def progress_bar(iterable=None, **options) -> std.tqdm:
    """``tqdm(iterable, leave=False, **options)``, drawn into :data:`PROGRESS_FILE`'s file where one is named."""
    path = os.environ.get(PROGRESS_FILE)
    if not path:
        return auto_tqdm(iterable, leave=False, **options)
    # the terminal shows the file once a second: drawing more often would only rewrite it
    return std.tqdm(
        iterable, **{"leave": False, "file": _screen(path), "bar_format": LINE_FORMAT, "mininterval": 0.5, **options}
    )


@lru_cache(maxsize=1)
def _screen(path: str) -> LatestLines:
    """One screen per file: the bars of a stage run are stacked (tqdm positions) on the same one."""
    return LatestLines(Path(path))


class LatestLines:
    """A stream that keeps what tqdm's bars show now, one line per bar, and puts that in ``path`` when flushed.

    It follows tqdm's moves only: a line redrawn after ``\\r`` replaces the old one (tqdm writes whole lines), ``\\n``
    goes a line down, ESC[A one up. The file is replaced, not appended to, so a reader sees the latest lines whole."""

    def __init__(self, path: Path):
        self.path, self.lines, self.row, self.written = path, [""], 0, None

    def write(self, text: str) -> None:
        for part in _CONTROL.split(text):
            if part == "\r":
                self.lines[self.row] = ""
            elif part == "\n":
                self.row += 1
                self.lines += [""] * (self.row + 1 - len(self.lines))
            elif part == "\x1b[A":
                self.row = max(0, self.row - 1)
            else:
                self.lines[self.row] += part

    def flush(self) -> None:
        screen = "\n".join(line.rstrip() for line in self.lines if line.strip())
        if screen == self.written:  # tqdm flushes after each move too
            return
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        try:
            tmp.write_text(screen, encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError:  # ``run`` gone (interrupted) with its folder: showing progress must never fail a stage
            return
        self.written = screen
