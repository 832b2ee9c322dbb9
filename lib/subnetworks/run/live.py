"""What the stage runs going now are doing, below ``run``'s line per start, where a person watches a terminal.

Each run's kernel draws its progress bars into a file of its own (:mod:`..nn.progress`); a thread here reads those
files once a second and redraws one line per active run under the last line echoed. Each echoed line first clears
that block and redraws it after, so the echoed lines stay as they would be without it. Off a terminal (pipes, CI,
Slurm logs) nothing of this exists: no file, no thread, and the echoed lines are all there is.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

UP_AND_CLEAR = "\x1b[{}A\x1b[J"  # cursor up n lines, erase from there to the end of the screen


class LiveProgress:
    """The live lines of one ``run`` call, drawn on ``stream`` when it is a terminal; ``echo`` prints the others.

    Used as a context: it owns the folder of progress files and the thread that redraws, and wipes the block at the
    end. ``showing(label)`` gives a run's progress file (None when off) while the run goes."""

    def __init__(self, stream: TextIO | None, echo: Callable[[str], None] = print, interval: float = 1.0):
        self.on = stream is not None and stream.isatty()
        self.stream, self._echo, self.interval = stream, echo, interval
        self.active: dict[str, Path] = {}
        self.shown: list[str] = []
        self.lock = threading.Lock()

    def __enter__(self) -> LiveProgress:
        if self.on:
            self.folder = tempfile.TemporaryDirectory(prefix="subnetworks-progress-")
            self.stopped = threading.Event()
            self.thread = threading.Thread(target=self._poll, daemon=True)
            self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.on:
            self.stopped.set()
            self.thread.join()
            with self.lock:
                self._draw([])
            self.folder.cleanup()

    @contextmanager
    def showing(self, label: str) -> Iterator[Path | None]:
        """The file ``label``'s kernel is to draw its bars into; the run has its live line until the ``with`` ends."""
        if not self.on:
            yield None
            return
        path = Path(self.folder.name) / f"{label.replace('/', '_')}.txt"
        with self.lock:
            self.active[label] = path
        try:
            yield path
        finally:
            with self.lock:
                del self.active[label]

    def echo(self, line: str) -> None:
        """``line`` above the live block (which is drawn again below it)."""
        if not self.on:
            self._echo(line)
            return
        with self.lock:
            self._draw([])
            self._echo(line)
            self._draw(self._lines())

    def refresh(self) -> None:
        """Draw the active runs' latest progress (what the thread does every ``interval`` seconds)."""
        with self.lock:
            lines = self._lines()
            if lines != self.shown:
                self._draw(lines)

    def _poll(self) -> None:
        while not self.stopped.wait(self.interval):
            self.refresh()

    def _lines(self) -> list[str]:
        """One line per active run, in the order they started, within the terminal's width (a wrapped line would
        throw off the count of lines to go back up)."""
        width = shutil.get_terminal_size().columns - 1
        return [_line(label, _bars(path), width) for label, path in self.active.items()]

    def _draw(self, lines: list[str]) -> None:
        """Replace the block drawn last with ``lines`` (the cursor stays below it)."""
        erase = UP_AND_CLEAR.format(len(self.shown)) if self.shown else ""
        self.stream.write(erase + "".join(f"{line}\n" for line in lines))
        self.stream.flush()
        self.shown = lines


def _bars(path: Path) -> list[str]:
    """A run's bars, outer to inner; none before its first."""
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []


def _line(label: str, bars: list[str], width: int) -> str:
    """``  label  outer › inner`` in ``width`` columns; where it is wider, the outer bars are cut short, not the
    innermost one: that is the one that moves."""
    line = f"  {label}  {' › '.join(bars)}".rstrip()
    if len(line) <= width or len(bars) < 2:
        return line[:width]
    inner, outer = f"… › {bars[-1]}", f"  {label}  {' › '.join(bars[:-1])}"
    return (outer[: max(len(label) + 4, width - len(inner))] + inner)[:width]


OFF = LiveProgress(None)  # shows nothing: for callers with no terminal to show on
