"""Every setting is checked when params are read: a value outside its range is a ConfigError naming the field's full
dotted path and what is allowed; languages are whatever params list (non-empty, unique)."""

import dataclasses
import re
import typing

import pytest

from subnetworks.spec import ConfigError, from_dict, load_study, repo_root
from subnetworks.spec.schema import (
    FamilyConfig,
    ModelConfig,
    PruneConfig,
    RuntimeConfig,
    SlurmConfig,
    SlurmStageConfig,
    SlurmTrainStageConfig,
    StudyConfig,
    TaskConfig,
    TrainConfig,
    TransferConfig,
)
from subnetworks.spec.validate import validate_schedule

SMOKE = "params/smoke.yaml"

# (field, bad value, what the message must say is allowed)
TRAIN_CASES = [
    ("learning_rate", "0", "> 0"),
    ("learning_rate", "-1", "> 0"),
    ("batch_size", "0", "≥ 1"),
    ("epochs", "0", "> 0"),
    ("epochs", "-0.5", "> 0"),
    ("max_steps", "-1", "≥ 0"),
    ("warmup_ratio", "1.0", "≥ 0 and < 1"),
    ("warmup_ratio", "-0.1", "≥ 0 and < 1"),
    ("weight_decay", "-0.01", "≥ 0"),
    ("head_learning_rate", "-0.001", "≥ 0"),
]
TASK_CASES = [
    ("max_length", "2", "≥ 4"),
    ("max_train", "-1", "≥ 0"),
    ("max_test", "-1", "≥ 0"),
    ("test_size", "-1", "≥ 0"),
    ("stream_take", "-5", "≥ 0"),
    ("mlm_probability", "0", "> 0 and < 1"),
    ("mlm_probability", "1", "> 0 and < 1"),
]
RUNTIME_CASES = [
    ("eval_batch_size", "0", "≥ 1"),
    ("workers", "0", "≥ 1"),
    ("num_threads", "-1", "≥ 0"),
]
CASES = (
    [(f"tasks.ner.imp_train.{f}", v, a) for f, v, a in TRAIN_CASES]
    + [(f"tasks.xnli.transfer_train.{f}", v, a) for f, v, a in TRAIN_CASES]
    + [(f"model.mlm_head.{f}", v, a) for f, v, a in TRAIN_CASES]
    + [(f"tasks.mlm.{f}", v, a) for f, v, a in TASK_CASES]
    + [(f"runtime.{f}", v, a) for f, v, a in RUNTIME_CASES]
    + [("runtime.slurm.prune.cpus", "0", "≥ 1"), ("runtime.slurm.poll_seconds", "0", "> 0")]
)


def _names_field(message: str, field: str) -> bool:
    """The message names the full dotted path as one whole name (not glued to the file name or an override)."""
    return re.search(rf"(^|\s){re.escape(field)} is ", message) is not None


@pytest.mark.parametrize("field, value, allowed", CASES, ids=[f"{f}={v}" for f, v, _ in CASES])
def test_a_setting_outside_its_range_names_the_field_and_the_range(field, value, allowed):
    with pytest.raises(ConfigError) as err:
        load_study(SMOKE, [f"{field}={value}"])
    message = str(err.value)
    assert _names_field(message, field), message
    assert message.endswith(f"it must be {allowed}"), message


@pytest.mark.parametrize("field, value, allowed", CASES, ids=[f"{f}={v}" for f, v, _ in CASES])
def test_the_edge_of_each_range_is_accepted(field, value, allowed):
    """The tightest allowed value next to each bad one loads: the ranges are neither too tight nor off by one."""
    edge = {"> 0": "0.000000001", "≥ 1": "1", "≥ 0": "0", "≥ 4": "4", "≥ 0 and < 1": "0.999", "> 0 and < 1": "0.999"}[
        allowed
    ]
    overrides = [f"{field}={edge}"]
    if field.endswith(".epochs"):
        overrides.append(f"{field.rsplit('.', 1)[0]}.max_steps=3")  # the tiniest epochs with a fixed number of steps
    load_study(SMOKE, overrides)


def test_scientific_notation_without_a_dot_is_a_number():
    study = load_study(SMOKE, ["tasks.ner.imp_train.learning_rate=1e-4"])
    assert study.task("ner").imp_train.learning_rate == 1e-4


def _scalar_number_fields(cls, prefix=""):
    """Every int / float field of a params dataclass, recursively, as (path, field)."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            yield from _scalar_number_fields(tp, f"{prefix}{f.name}.")
        elif tp in (int, float):
            yield f"{prefix}{f.name}", f


def test_every_number_of_every_section_carries_a_range():
    """A new numeric setting without a range would let e.g. a negative batch size through to the trainer."""
    sections = (
        StudyConfig,
        ModelConfig,
        TaskConfig,
        TrainConfig,
        PruneConfig,
        TransferConfig,
        RuntimeConfig,
        SlurmConfig,
        SlurmStageConfig,
        SlurmTrainStageConfig,
        FamilyConfig,
    )
    unranged = [
        (cls.__name__, path) for cls in sections for path, f in _scalar_number_fields(cls) if "range" not in f.metadata
    ]
    assert unranged == []
    assert {path for path, _ in _scalar_number_fields(TrainConfig)} == {
        "learning_rate",
        "batch_size",
        "epochs",
        "max_steps",
        "weight_decay",
        "warmup_ratio",
        "head_learning_rate",
    }


def _nested(path: str, value):
    """``{"a": {"b": value}}`` for the path ``a.b``."""
    *parents, last = path.split(".")
    data = {last: value}
    for part in reversed(parents):
        data = {part: data}
    return data


@pytest.mark.parametrize("cls", [TrainConfig, TaskConfig, RuntimeConfig, SlurmConfig, ModelConfig])
def test_every_default_lies_in_its_range_and_just_outside_is_refused(cls):
    required = {TaskConfig: {"kind": "mlm", "source": "hub", "dataset": "x"}, ModelConfig: {"name": "m"}}.get(cls, {})
    checked = 0
    for path, f in _scalar_number_fields(cls):
        allowed = f.metadata["range"]
        assert allowed.admits(f.default), (cls.__name__, path)
        outside = []
        if allowed.low is not None:
            outside.append(allowed.low if allowed.low_open else allowed.low - 1)
        if allowed.high is not None:
            outside.append(allowed.high if allowed.high_open else allowed.high + 1)
        for value in outside:
            with pytest.raises(ConfigError, match=rf"^{re.escape(path)} is .*: it must be {re.escape(str(allowed))}$"):
                from_dict(cls, {**required, **_nested(path, value)})
            checked += 1
    assert checked > 0


def test_languages_are_whatever_params_list():
    study = load_study(SMOKE, ["languages=[en, sw]"])  # sw is none of the paper's nine
    assert study.languages == ("en", "sw")
    assert study.task_languages("mlm") == ("en", "sw") and study.task_languages("xnli") == ("en",)
    assert load_study(SMOKE, ["languages=[qu, en]"]).languages == ("qu", "en")


@pytest.mark.parametrize(
    "value, message",
    [
        ("[en, ur, en]", r"languages lists \['en'\] more than once"),
        ("[]", "languages is empty"),
        ("['', en]", "empty code"),
        ("en", "languages must be a list"),
    ],
)
def test_bad_language_lists(value, message):
    with pytest.raises(ConfigError, match=message):
        load_study(SMOKE, [f"languages={value}"])


def test_a_task_without_any_study_language_is_rejected():
    with pytest.raises(ConfigError, match=r"task 'xnli' has none of the study languages \['zh'\]"):
        load_study(SMOKE, ["languages=[zh]"])


@pytest.mark.parametrize("value", ["kept", "INIT", "''"])
def test_unknown_head_at_rewind_is_rejected(value):
    with pytest.raises(ConfigError, match=r"prune\.head_at_rewind .* is unknown: use one of \['init', 'trained'\]"):
        load_study(SMOKE, [f"prune.head_at_rewind={value}"])
    assert load_study(SMOKE, ["prune.head_at_rewind=trained"]).prune.head_at_rewind == "trained"


def test_unknown_executor_and_task_kind_are_rejected():
    with pytest.raises(ConfigError, match=r"runtime\.executor 'pbs' is unknown: use one of \['local', 'slurm'\]"):
        load_study(SMOKE, ["runtime.executor=pbs"])
    with pytest.raises(ConfigError, match=r"tasks\.mlm\.kind 'lm' is unknown"):
        load_study(SMOKE, ["tasks.mlm.kind=lm"])


def test_an_error_in_the_file_names_the_file_and_an_error_in_an_override_names_the_override(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text((repo_root() / SMOKE).read_text().replace("max_train: 64", "max_train: -64", 1))
    with pytest.raises(ConfigError, match=r"bad\.yaml.*tasks\.xnli\.max_train is -64"):
        load_study(bad)
    with pytest.raises(ConfigError, match=r"--set tasks\.ner\.max_train=-2"):
        load_study(SMOKE, ["tasks.ner.max_train=-2"])


def test_bad_override_syntax():
    with pytest.raises(ConfigError, match="must look like key.sub=value"):
        load_study(SMOKE, ["tasks.ner.max_train"])
    with pytest.raises(ConfigError, match=r"'max_train' is not a section"):
        load_study(SMOKE, ["tasks.ner.max_train.x=1"])


@pytest.mark.parametrize(
    "schedule, message",
    [
        ((), "empty"),
        ((0.5, 0.5), "not strictly increasing"),
        ((0.0,), r"outside \(0, 1\)"),
        ((1.0,), r"outside \(0, 1\)"),
        ((0.8, 0.5), "not strictly increasing"),
    ],
)
def test_bad_schedules(schedule, message):
    with pytest.raises(ConfigError, match=message):
        validate_schedule(schedule)


def test_good_schedule():
    validate_schedule((0.1, 0.2, 0.9))
