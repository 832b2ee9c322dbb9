"""IMP levels are integers; ``level_of`` is the one place a float sparsity (user input) becomes a level."""

import dataclasses
import math

import pytest

from subnetworks.spec import ConfigError, PruneConfig, TransferConfig, load_study

SMOKE = load_study("params/smoke.yaml")  # schedule [0.5, 0.8], transfer sparsities [0.5, 0.8]
PAPER = load_study("params/paper.yaml")  # schedule 0.1 … 0.9


def _with(schedule, sparsities=None):
    return dataclasses.replace(
        SMOKE,
        prune=PruneConfig(schedule=tuple(schedule)),
        transfer=TransferConfig(sparsities=tuple(sparsities if sparsities is not None else schedule[-1:])),
    )


def test_levels_run_from_the_dense_model_to_the_last_sparsity():
    assert list(SMOKE.levels) == [0, 1, 2]
    assert list(PAPER.levels) == list(range(10))
    assert SMOKE.sparsity_of(0) == 0.0 and PAPER.sparsity_of(0) == 0.0  # level 0 is the dense model
    assert [SMOKE.sparsity_of(level) for level in SMOKE.levels] == [0.0, 0.5, 0.8]


@pytest.mark.parametrize("level", [-1, 3, 10])
def test_a_level_outside_the_schedule_is_an_error(level):
    with pytest.raises(ConfigError, match=rf"level {level} is not an IMP level: levels are 0 to 2"):
        SMOKE.sparsity_of(level)


@pytest.mark.parametrize("study", [SMOKE, PAPER], ids=["smoke", "paper"])
def test_level_of_inverts_sparsity_of_for_every_scheduled_level(study):
    for level, sparsity in enumerate(study.prune.schedule, 1):
        assert study.level_of(sparsity) == level
        assert study.sparsity_of(study.level_of(sparsity)) == sparsity  # exactly the schedule's own float
        assert study.level_of(study.sparsity_of(level)) == level


@pytest.mark.parametrize(
    "sparsity, level",
    [
        (0.5 + 1e-9, 1),
        (0.5 - 1e-9, 1),
        (0.8 - 1e-9, 2),
        (0.8 + 1e-9, 2),
        (0.5 + 9e-7, 1),
        (0.1 + 0.2 + 0.2, 1),
        (1 - 0.2, 2),
    ],
)
def test_float_noise_maps_to_the_scheduled_level(sparsity, level):
    assert SMOKE.level_of(sparsity) == level


def test_float_noise_on_the_paper_schedule():
    # sums of tenths are not the schedule's literals, yet name their level
    assert PAPER.level_of(0.1 * 3) == 3 and 0.1 * 3 != 0.3
    assert PAPER.level_of(0.7 + 0.1) == 8 and 0.7 + 0.1 != 0.8


@pytest.mark.parametrize("sparsity", [0.5 + 1e-3, 0.5 - 1e-3, 0.5 + 2e-6, 0.6, 0.65, 0.9])
def test_a_sparsity_off_the_schedule_is_an_error(sparsity):
    with pytest.raises(ConfigError, match=r"not a level of prune\.schedule \[0\.5, 0\.8\]"):
        SMOKE.level_of(sparsity)


@pytest.mark.parametrize("sparsity", [0.0, 1.0, -0.5, 1.5, math.nan])
def test_a_sparsity_outside_the_open_unit_interval_is_an_error(sparsity):
    # 0.0 is level 0's sparsity (sparsity_of(0)), but no float names the dense level: it is never transferred
    with pytest.raises(ConfigError, match=r"outside \(0, 1\)"):
        SMOKE.level_of(sparsity)


def test_transfer_levels_follow_transfer_sparsities_in_their_order():
    assert SMOKE.transfer_levels == (1, 2)
    assert PAPER.transfer_levels == (5, 8)
    assert _with([0.2, 0.5, 0.8], [0.8, 0.5 + 1e-9]).transfer_levels == (3, 2)


def test_close_scheduled_sparsities_stay_distinct():
    study = _with([0.5, 0.5 + 1e-3])
    assert study.level_of(0.5) == 1 and study.level_of(0.501) == 2


def test_transfer_sparsities_off_the_schedule_are_rejected_when_loading():
    with pytest.raises(ConfigError, match=r"transfer\.sparsities: sparsity 0\.7 is not a level of prune\.schedule"):
        load_study("params/smoke.yaml", ["transfer.sparsities=[0.5, 0.7]"])
    assert load_study("params/smoke.yaml", ["transfer.sparsities=[0.8]"]).transfer_levels == (2,)
