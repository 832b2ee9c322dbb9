"""The stages' progress bars written to a file for ``run``'s terminal: the latest lines, replaced, never appended."""

from __future__ import annotations

from tqdm.auto import tqdm

from subnetworks.nn.progress import PROGRESS_FILE, progress_bar


def test_a_bar_leaves_its_latest_line_in_the_file(tmp_path, monkeypatch):
    path = tmp_path / "run.txt"
    monkeypatch.setenv(PROGRESS_FILE, str(path))
    bar = progress_bar(total=5, desc="IMP mlm/en level 1 (50%)", mininterval=0)
    for step in range(1, 4):
        bar.update(1)
        bar.set_postfix(loss=f"{step / 10:.3f}")
        text = path.read_text()
        assert text.startswith(f"IMP mlm/en level 1 (50%): {step}/5 [") and text.endswith(f", loss={step / 10:.3f}]")
        assert "\n" not in text and "\r" not in text  # overwritten, not appended
    bar.close()
    assert path.read_text() == ""  # a finished bar leaves nothing behind
    assert [p.name for p in tmp_path.iterdir()] == ["run.txt"]  # replaced through a temporary file, gone


def test_nested_bars_keep_a_line_each_outer_first(tmp_path, monkeypatch):
    path = tmp_path / "run.txt"
    monkeypatch.setenv(PROGRESS_FILE, str(path))
    with progress_bar(range(3), desc="IMP levels", mininterval=0) as levels:
        for level in levels:
            with progress_bar(total=4, desc=f"level {level}", mininterval=0) as steps:
                steps.update(2)
                outer, inner = path.read_text().split("\n")
                assert outer.startswith(f"IMP levels: {level}/3 [") and inner.startswith(f"level {level}: 2/4 [")
            assert path.read_text().startswith(f"IMP levels: {level}/3 [")  # the inner bar's line is cleared
    assert path.read_text() == ""


def test_without_a_file_the_bars_are_tqdm_auto_and_quiet_ones_write_nothing(tmp_path, monkeypatch):
    monkeypatch.delenv(PROGRESS_FILE, raising=False)
    with progress_bar(total=2, desc="by hand", disable=True) as bar:
        assert type(bar) is tqdm  # JupyterLab's widget in a notebook
    path = tmp_path / "run.txt"
    monkeypatch.setenv(PROGRESS_FILE, str(path))
    with progress_bar(total=2, desc="quiet", disable=True) as bar:  # runtime.progress: false
        bar.update(2)
    assert not path.exists()


def test_a_vanished_folder_does_not_fail_the_stage(tmp_path, monkeypatch):
    monkeypatch.setenv(PROGRESS_FILE, str(tmp_path / "gone" / "run.txt"))  # ``run`` was interrupted, its folder wiped
    with progress_bar(total=2, desc="steps", mininterval=0) as bar:
        bar.update(2)
    assert bar.n == 2
