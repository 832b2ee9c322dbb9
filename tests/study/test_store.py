"""Run directories: DONE written last, atomic writes, errors that name the file and a fix that works."""

from __future__ import annotations

import json
import os

import pytest

from subnetworks.core.atomic import atomic_write_bytes
from subnetworks.study.store import DONE, ArtifactError, LockedError, RunDir, exclusive, read_json, write_json


def test_a_run_is_done_only_once_marked(tmp_path):
    run = RunDir.at(tmp_path, "prune", "ner", "en", "abc123", seed=57)
    assert run.path == tmp_path / "prune" / "ner" / "en" / "prune_abc123" / "seed_57"
    run.write_json("metrics.json", {"score": 0.5})
    assert not run.done
    run.mark_done()
    assert run.done and run.file(DONE).read_bytes() == b""
    assert RunDir.at(tmp_path, "overlap", "ner", "all", "k").path.name == "overlap_k"  # seedless stages


def test_an_interrupted_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "metrics.json"
    write_json(path, {"score": 1})

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device", str(dst))

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        atomic_write_bytes(path, b'{"score": 2}')
    monkeypatch.undo()
    assert json.loads(path.read_text()) == {"score": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_a_damaged_file_of_a_finished_run_names_every_done_to_delete(tmp_path):
    run = RunDir(tmp_path / "run")
    level = run.sub("level_01")
    level.write_json("metrics.json", {"score": 1})
    level.mark_done()
    run.mark_done()
    level.file("metrics.json").write_text('{"sco')
    with pytest.raises(ArtifactError) as err:
        level.read_json("metrics.json")
    message = str(err.value)
    assert "is damaged" in message and str(level.file(DONE)) in message and str(run.file(DONE)) in message
    with pytest.raises(ArtifactError, match="is missing: rerun the stage that writes it"):
        read_json(tmp_path / "nothing.json")


def test_require_done_names_the_stage_to_run_first(tmp_path):
    with pytest.raises(ArtifactError, match="IMP for ner/en has not finished .* run that stage first"):
        RunDir(tmp_path / "x").require_done("IMP for ner/en")


def test_one_run_at_a_time_holds_an_artefacts_directory(tmp_path):
    with exclusive(tmp_path / "art"):
        with pytest.raises(LockedError, match=f"pid {os.getpid()}"):
            with exclusive(tmp_path / "art"):
                pass
    with exclusive(tmp_path / "art"):  # released
        pass
