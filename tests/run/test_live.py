"""``run``'s live lines: one per stage run going now, drawn under the echoed lines on a terminal and nowhere else."""

from __future__ import annotations

import io
import re
import threading
import time

import nbformat

from subnetworks.nn.progress import PROGRESS_FILE
from subnetworks.run import stage_runs
from subnetworks.run.kernel import SharedKernel
from subnetworks.run.live import LiveProgress
from subnetworks.run.scheduler import execute_all
from subnetworks.study.store import RunDir


class Terminal(io.StringIO):
    """A terminal as far as ``run`` drives one: lines, cursor up (ESC[nA) and erase below (ESC[J)."""

    def isatty(self) -> bool:
        return True

    def screen(self) -> list[str]:
        lines, row = [""], 0
        for part in re.split(r"(\n|\x1b\[\d+A|\x1b\[J)", self.getvalue()):
            if part == "\n":
                row += 1
                lines[row:] = lines[row:] or [""]
            elif part == "\x1b[J":
                del lines[row + 1 :]
                lines[row] = ""
            elif part.startswith("\x1b["):
                row -= int(part[2:-1])
            else:
                lines[row] += part
        return lines[:-1] if lines[-1] == "" else lines


def test_the_block_shows_each_run_going_now_below_the_echoed_lines(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    term = Terminal()
    with LiveProgress(term, lambda line: term.write(line + "\n"), interval=3600) as live:
        live.echo("[1/3] prune/mlm/en/seed57")
        with live.showing("prune/mlm/en/seed57") as en:
            en.write_text("IMP levels: 1/3 [00:10<00:20]\nIMP mlm/en level 1: 4/8 [00:01<00:01]")
            live.refresh()
            assert term.screen() == [
                "[1/3] prune/mlm/en/seed57",
                # too wide for the terminal: the outer bar is cut short, not the inner one
                "  prune/mlm/en/seed57  IMP levels: 1/3… › IMP mlm/en level 1: 4/8 [00:01<00:01]",
            ]
            live.echo("[2/3] prune/mlm/de/seed57")
            with live.showing("prune/mlm/de/seed57"):
                live.refresh()
                en.write_text("IMP levels: 2/3 [00:20<00:10]")
                live.refresh()
                assert term.screen() == [
                    "[1/3] prune/mlm/en/seed57",
                    "[2/3] prune/mlm/de/seed57",
                    "  prune/mlm/en/seed57  IMP levels: 2/3 [00:20<00:10]",
                    "  prune/mlm/de/seed57",  # started, no bar yet
                ]
        live.echo("[3/3] overlap/mlm")
        assert term.screen() == ["[1/3] prune/mlm/en/seed57", "[2/3] prune/mlm/de/seed57", "[3/3] overlap/mlm"]
    assert not en.parent.exists()  # the progress files go with the run


def test_off_a_terminal_only_the_echoed_lines_are_written():
    stream, echoed = io.StringIO(), []
    with LiveProgress(stream, echoed.append, interval=0.01) as live:
        with live.showing("prune/mlm/en/seed57") as progress:
            live.echo("[1/1] prune/mlm/en/seed57")
            time.sleep(0.05)
    assert progress is None and stream.getvalue() == "" and echoed == ["[1/1] prune/mlm/en/seed57"]


def test_the_block_is_redrawn_as_the_file_changes():
    term = Terminal()
    with LiveProgress(term, interval=0.01) as live, live.showing("data/mlm/en") as progress:
        progress.write_text("evaluate: 1/2 [00:01<00:01]")
        _wait_for(lambda: term.screen() == ["  data/mlm/en  evaluate: 1/2 [00:01<00:01]"])


def _wait_for(condition, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "not shown in time"
        time.sleep(0.02)


def _write_notebook(path, code: str) -> None:
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    notebook.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "Python 3"}
    nbformat.write(notebook, path)


NOTEBOOK = """\
import time
from pathlib import Path
from subnetworks.nn.progress import progress_bar
bar = progress_bar(total=4, desc="steps of " + name, mininterval=0)
bar.update(3)
deadline = time.time() + 60
while not Path(seen).exists() and time.time() < deadline:  # until the terminal has shown both workers' bars
    time.sleep(0.02)
bar.close()
"""


def test_two_workers_kernels_bars_reach_the_terminal_side_by_side(tmp_path, monkeypatch):
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    _write_notebook(notebooks / "01_data.ipynb", NOTEBOOK)
    monkeypatch.setattr(stage_runs, "NOTEBOOKS", notebooks)
    seen = tmp_path / "seen"
    runs = [
        stage_runs.StageRun("data", {"name": lang, "seen": str(seen)}, RunDir(tmp_path / lang), f"data/t/{lang}")
        for lang in ("en", "de")
    ]
    term, shown = Terminal(), []

    def both_shown() -> None:
        _wait_for(lambda: sum("3/4" in line for line in term.screen()) == 2, 30)
        shown.extend(re.sub(r" \[.*", "", line) for line in term.screen())  # without the times
        seen.touch()

    watcher = threading.Thread(target=both_shown)
    with LiveProgress(term, lambda line: term.write(line + "\n"), interval=0.02) as live:
        watcher.start()
        for _ in execute_all(runs, [], 2, 1, live.echo, live=live):
            pass
        watcher.join()
    assert shown[:2] == ["[1/2] data/t/en", "[2/2] data/t/de"]
    # below them a line per worker, in the order the workers' threads took their runs
    assert sorted(shown[2:]) == ["  data/t/de  steps of de: 3/4", "  data/t/en  steps of en: 3/4"]
    assert term.screen() == ["[1/2] data/t/en", "[2/2] data/t/de"]


def test_a_kernel_is_pointed_at_a_file_only_while_a_run_names_one(tmp_path):
    notebook = tmp_path / "env.ipynb"
    code = f"import os\nprint('file:', os.environ.get({PROGRESS_FILE!r}))"
    _write_notebook(notebook, code)
    with SharedKernel() as kernel:
        kernel.execute(notebook, tmp_path / "live.ipynb", {}, tmp_path / "run.txt")
        kernel.execute(notebook, tmp_path / "by_hand.ipynb", {})
    assert f"file: {tmp_path / 'run.txt'}" in (tmp_path / "live.ipynb").read_text()
    assert "file: None" in (tmp_path / "by_hand.ipynb").read_text()  # not left over from the run before
