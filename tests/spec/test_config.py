"""Params files: loading, ``base:`` inheritance, strict types, run keys, and the notebooks' parameter cells."""

import math

import pytest

from subnetworks.nn.families import resolve_family
from subnetworks.spec import (
    ConfigError,
    StudyConfig,
    TrainConfig,
    from_dict,
    load_study,
    repo_root,
    run_key,
    validate_notebook_params,
)
from subnetworks.spec.notebooks import PruneParams
from subnetworks.study.layout import Layout

SMOKE = "params/smoke.yaml"
SMOKE_TEXT = (repo_root() / SMOKE).read_text(encoding="utf-8")


def test_every_params_file_loads():
    for name in ("smoke", "paper", "demo", "offline-full", "xlmr", "mmbert"):
        study = load_study(f"params/{name}.yaml")
        assert isinstance(study, StudyConfig) and study.tasks and study.languages


@pytest.mark.parametrize("name, family", [("xlmr", "xlm-roberta"), ("mmbert", "modernbert")])
def test_other_encoders_are_the_paper_study_on_another_checkpoint(name, family):
    paper, other = load_study("params/paper.yaml"), load_study(f"params/{name}.yaml")
    assert resolve_family(other.model, "").name == family  # known offline, before the checkpoint is read
    assert other.model.name != paper.model.name and other.runtime.artifacts != paper.runtime.artifacts
    assert (other.tasks, other.prune, other.transfer, other.seeds) == (
        paper.tasks,
        paper.prune,
        paper.transfer,
        paper.seeds,
    )


def test_a_params_file_can_extend_another():
    demo, full = load_study("params/demo.yaml"), load_study("params/offline-full.yaml")
    assert len(full.languages) == 9 and set(demo.languages) < set(full.languages)
    assert full.tasks == demo.tasks and full.prune == demo.prune and full.model == demo.model
    assert full.runtime.artifacts != demo.runtime.artifacts


def test_a_base_that_includes_itself_is_refused(tmp_path):
    (tmp_path / "a.yaml").write_text("base: b.yaml\nname: a\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\nname: b\n")
    with pytest.raises(ConfigError, match="includes itself"):
        load_study(tmp_path / "a.yaml")


def test_run_keys_are_pinned():
    # Literal keys: if one changes, every finished run of every user is silently recomputed. Bump a stage's
    # version on purpose instead.
    assert run_key("prune", 1, TrainConfig()) == run_key("prune", 1, {})
    assert run_key("prune", 1, TrainConfig(learning_rate=1e-4)) == "61a7d4a5e210"
    layout = Layout(load_study(SMOKE), "/nonexistent")
    assert layout.data_key("xnli", "ur") == "e0d7fdb99d41"
    assert layout.prune_key("xnli", "ur") == "7064d6188996"  # prune 7; smoke: seeds 57-58, controls at 57
    assert layout.transfer_key("xnli", "ur", 1) == "7a38709bfa3d"  # level 1 (50 %); transfer 4


def test_a_new_field_with_its_default_keeps_run_keys():
    """Defaults are left out of keys at every depth, also inside plain dicts (the prune key's training config)."""
    assert run_key("prune", 3, {"train": TrainConfig()}) == run_key("prune", 3, {"train": {}})
    assert run_key("prune", 3, {"train": TrainConfig(head_learning_rate=0.02)}) != run_key("prune", 3, {"train": {}})


def test_keys_ignore_runtime_and_depend_on_what_matters(tmp_path):
    base = Layout(load_study(SMOKE), tmp_path)
    other = tmp_path / "other.yaml"
    assert "eval_batch_size: 64" in SMOKE_TEXT
    other.write_text(SMOKE_TEXT.replace("eval_batch_size: 64", "eval_batch_size: 8"))
    assert Layout(load_study(other), tmp_path).prune_key("ner", "en") == base.prune_key("ner", "en")
    other.write_text(
        SMOKE_TEXT.replace("schedule: [0.5, 0.8]", "schedule: [0.4, 0.8]").replace(
            "sparsities: [0.5, 0.8]", "sparsities: [0.8]"
        )
    )
    assert Layout(load_study(other), tmp_path).prune_key("ner", "en") != base.prune_key("ner", "en")
    other.write_text(SMOKE_TEXT.replace("test_size: 24", "test_size: 24\n    eval_mask_draws: 3"))
    draws = Layout(load_study(other), tmp_path)  # scored on other test masks: other runs, the same data
    assert draws.data_key("mlm", "en") == base.data_key("mlm", "en")
    assert draws.prune_key("mlm", "en") != base.prune_key("mlm", "en")
    assert draws.transfer_key("mlm", "en", 1) != base.transfer_key("mlm", "en", 1)


@pytest.mark.parametrize(
    "edit, message",
    [
        (("languages: [en, ur, zh]", "languages: [en, ur, en]"), r"languages lists \['en'\] more than once"),
        (("languages: [en, ur, zh]", "languages: []"), "languages is empty"),
        (("kind: tokcls", "kind: ner"), r"tasks\.ner\.kind 'ner' is unknown: use one of \['mlm', 'seqcls', 'tokcls'\]"),
        (("schedule: [0.5, 0.8]", "schedule: [0.8, 0.5]"), "not strictly increasing"),
        (("schedule: [0.5, 0.8]", "schedule: [0.5, 1.0]"), r"outside \(0, 1\)"),
        (("head_at_rewind: init", "head_at_rewind: true"), "must be a string"),
        (("max_train: 64", "max_train: lots"), "must be an integer"),
        (("head_at_rewind: init", "head_at_rewind: init\n  warmup: 3"), r"unknown parameter\(s\) \['warmup'\]"),
        (
            ("head_at_rewind: init", "head_at_rewind: kept"),
            r"prune\.head_at_rewind 'kept' is unknown: use one of \['init', 'trained'\]",
        ),
        (("name: smoke", "name: [smoke"), "not valid YAML"),
        (("sparsities: [0.5, 0.8]", "sparsities: [0.5, 0.7]"), "not a level of prune.schedule"),
        (("seeds: [57]", "seeds: [57, 57]"), r"seeds lists \['57'\] more than once"),
        (("device: cpu", "device: tpu"), "runtime.device 'tpu' is unknown"),
    ],
)
def test_bad_params_files_fail_with_a_message(tmp_path, edit, message):
    bad = tmp_path / "bad.yaml"
    assert edit[0] in SMOKE_TEXT
    bad.write_text(SMOKE_TEXT.replace(edit[0], edit[1], 1))
    with pytest.raises(ConfigError, match=message):
        load_study(bad)


def test_missing_params_file():
    with pytest.raises(ConfigError, match="does not exist"):
        load_study("params/nope.yaml")


def test_types_are_checked_strictly():
    assert from_dict(TrainConfig, {"learning_rate": 1}).learning_rate == 1.0
    assert isinstance(from_dict(TrainConfig, {"learning_rate": 1}).learning_rate, float)
    with pytest.raises(ConfigError, match="must be a finite number"):
        from_dict(TrainConfig, {"learning_rate": math.nan})
    with pytest.raises(ConfigError, match="must be a finite number"):
        from_dict(TrainConfig, {"learning_rate": math.inf})
    with pytest.raises(ConfigError, match="must be an integer"):
        from_dict(TrainConfig, {"batch_size": True})
    with pytest.raises(ConfigError, match="must be an integer"):
        from_dict(TrainConfig, {"batch_size": 8.0})


def _globals(**values):
    base = {"params_file": SMOKE, "artifacts": "", "task": "ner", "lang": "ur", "seed": 57}
    base.update(values)
    return {**base, "In": [], "Out": {}, "_": None, "get_ipython": print}


@pytest.mark.parametrize(
    "values, message",
    [
        ({"lang": math.nan}, "must be a string, got nan"),
        ({"lang": "xx"}, r"unknown language 'xx' for task 'ner': use one of \['en', 'ur', 'zh'\]"),
        ({"task": "pos"}, r"unknown task 'pos': this study has tasks \['mlm', 'ner', 'xnli'\]"),
        ({"langauge": "ur"}, r"unknown parameter\(s\) \['langauge'\] for 02_prune.ipynb"),
        ({"seed": "57"}, "must be an integer"),
        ({"seed": 1}, "not among the study's seeds"),
        ({"task": "xnli", "lang": "zh"}, r"unknown language 'zh' for task 'xnli'"),
    ],
)
def test_bad_notebook_parameters(values, message):
    with pytest.raises(ConfigError, match=message):
        validate_notebook_params("02_prune", _globals(**values))


def test_good_notebook_parameters_and_bad_sparsity():
    params, study = validate_notebook_params("02_prune", _globals())
    assert params == PruneParams(params_file=SMOKE, task="ner", lang="ur", seed=57) and study.name == "smoke"
    g = {"params_file": SMOKE, "artifacts": "", "task": "ner", "source": "ur", "sparsity": 1.5, "seed": 57}
    with pytest.raises(ConfigError, match=r"outside \(0, 1\)"):
        validate_notebook_params("03_transfer", g)
    with pytest.raises(ConfigError, match="not a level of prune.schedule"):
        validate_notebook_params("03_transfer", {**g, "sparsity": 0.6})
    params, _ = validate_notebook_params("03_transfer", {**g, "sparsity": 0.8 - 1e-12})  # float noise from -p
    assert params.sparsity == pytest.approx(0.8)
