"""The headline numbers of the smoke study's summary.json (and the report's sentences and tables where they quote
them), each recomputed here by hand from the raw metrics.json and overlap CSV files the stages wrote."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from subnetworks import report
from subnetworks.core.stats import spearman

pytestmark = pytest.mark.slow
CONTROLS = ("pretrained", "random", "global_random")
NULL_CONTROLS = {"layerwise": "random", "global": "global_random"}


def test_dense_scores_equal_level_zero_of_each_prune_run(raw):
    dense = raw.summary()["dense_score"]
    for task in raw.study.tasks:
        assert set(dense[task]) == set(raw.study.task_languages(task))  # xnli: en and ur only
        for lang in raw.study.task_languages(task):
            assert raw.prune(task, lang)["levels"][0]["level"] == 0
            assert raw.close(dense[task][lang], raw.level_score(task, lang, 0))  # mean over the seeds


def test_scores_of_imp_and_each_control_are_means_over_languages(raw):
    scores = raw.summary()["scores"]
    for task in raw.study.tasks:
        langs = raw.study.task_languages(task)
        for level in raw.study.transfer_levels:
            got = scores[task][f"{raw.study.sparsity_of(level):g}"]
            imp = [raw.level_score(task, lang, level) for lang in langs]
            assert raw.close(got["imp"], sum(imp) / len(imp))
            for control in CONTROLS:
                values = [raw.control_score(task, lang, level, control) for lang in langs]
                assert raw.close(got[control], sum(values) / len(values)), (task, level, control)


def test_relative_change_and_change_against_p_recomputed_from_metrics(raw):
    """Means over the off-diagonal cells where neither acc(s,t) nor acc(t,t) is at chance (as the interval table
    flags them); every term recomputed from the transfer runs' and the prune runs' metrics."""
    head = raw.summary()
    flags = pd.read_csv(raw.reports / "tables" / "transfer_intervals.csv", dtype={"source": str, "target": str})
    for task in raw.study.tasks:
        langs = raw.study.task_languages(task)
        for level in raw.study.transfer_levels:
            sparsity = raw.study.sparsity_of(level)
            acc = raw.transfer(task, level)
            # acc(P, t): P scored on t, fine-tuned as the transfer runs fine-tune (smoke's differ from IMP's)
            p = {t: raw.control_score(task, t, level, "pretrained", "transfer") for t in langs}
            cells = flags[(flags["task"] == task) & (flags["sparsity"] == sparsity)]
            chance = {(r.source, r.target) for r in cells.itertuples() if r.at_chance or r.diagonal_at_chance}
            usable = [(s, t) for s in langs for t in langs if s != t and (s, t) not in chance]
            paper = [_change(acc[s, t], acc[t, t]) for s, t in usable]
            against_p = [_change(acc[s, t], p[t]) for s, t in usable]
            key = f"{sparsity:g}"
            assert raw.close(head["relative_change"][task].get(key), raw.mean_of_finite(paper)), (task, level)
            assert raw.close(head["relative_change_vs_pretrained"][task].get(key), raw.mean_of_finite(against_p))
            at_chance = head["relative_change_interval"]["relative_change"]["at_chance"][task][key]
            assert at_chance == len(langs) * (len(langs) - 1) - len(usable)


def _change(score: float, reference: float) -> float:
    return (score - reference) / reference if reference else math.nan


def test_overlap_with_both_nulls_p_and_excess_recomputed_from_overlap_tables(raw):
    head = raw.summary()
    for task in raw.study.tasks:
        pairs, shared = raw.overlap(task, "pairwise"), raw.overlap(task, "shared")
        controls, departures = raw.overlap(task, "controls"), raw.overlap(task, "departures")
        for level in raw.study.transfer_levels:
            sparsity = raw.study.sparsity_of(level)
            got = head["overlap"][task][f"{sparsity:g}"]
            at = pairs[(pairs["by"] == "all") & (pairs["sparsity"] == sparsity)]
            imp = at[at["masks"] == "imp"]
            assert len(imp) == math.comb(len(raw.study.task_languages(task)), 2) * len(raw.study.seeds)
            assert raw.close(got["jaccard"], imp["jaccard"].mean())
            for null, control in NULL_CONTROLS.items():
                assert raw.close(got[f"{null}_expected"], imp[f"expected_{null}_jaccard"].mean())
                assert raw.close(got[f"{null}_measured"], at[at["masks"] == control]["jaccard"].mean())
            all_ = shared[(shared["by"] == "all") & (shared["masks"] == "imp") & (shared["sparsity"] == sparsity)]
            assert raw.close(got["shared_by_all"], all_["jaccard"].mean())
            p = controls[(controls["control"] == "pretrained") & (controls["sparsity"] == sparsity)]
            assert raw.close(got["pretrained_jaccard"], p["jaccard"].mean())
            d = departures[(departures["by"] == "all") & (departures["sparsity"] == sparsity)]
            d = d[d["pair"] == "other_seed"]  # other languages at other seeds: free of the shared-seed confound
            assert len(d) == 2 * math.comb(
                len(raw.study.task_languages(task)), 2
            )  # (a, 57)–(b, 58) and (a, 58)–(b, 57)
            for column in ("excess", "excess_band", "gained_jaccard", "lost_jaccard"):
                assert raw.close(got[column], d[column].mean()), (task, sparsity, column)


def test_correlation_recomputed_from_overlap_and_transfer(raw):
    head = raw.summary()
    for task in raw.study.tasks:
        pairs = raw.overlap(task, "pairwise")
        points = []
        for level in raw.study.transfer_levels:
            sparsity = raw.study.sparsity_of(level)
            imp = pairs[(pairs["by"] == "all") & (pairs["masks"] == "imp") & (pairs["sparsity"] == sparsity)]
            jac = {frozenset(ab): j for ab, j in imp.groupby(["a", "b"])["jaccard"].mean().items()}  # mean over seeds
            acc = raw.transfer(task, level)
            for (s, t), score in acc.items():
                change = _change(score, acc[t, t])
                if s != t and math.isfinite(change):
                    points.append((jac[frozenset((s, t))], change))
        want = spearman(*zip(*points)) if len(points) >= 3 else math.nan
        assert raw.close(head["correlation"][task]["all"]["spearman"], want), task
        assert head["correlation"][task]["all"]["n"] == len(points)


def test_random_control_sentence_states_the_largest_gap_to_each_null(raw, smoke):
    _, _, sections = smoke
    text = "\n".join(s.text() for s in sections)
    head = raw.summary()
    for null, control in NULL_CONTROLS.items():
        draws = pd.concat([raw.overlap(task, "pairwise") for task in raw.study.tasks])
        draws = draws[(draws["by"] == "all") & (draws["masks"] == control)]
        gaps = (draws["jaccard"] - draws[f"expected_{null}_jaccard"]).abs()
        worst, largest = draws.iloc[int(gaps.to_numpy().argmax())], gaps.max()
        verdict = "within" if largest <= 0.005 else "not within"
        label = {"random": "layer-wise random", "global_random": "global random"}[control]
        assert (
            f"the {label} masks against the {null.replace('layerwise', 'layer-wise')} null: largest gap {largest:.4f} "
            f"({worst['task']} at {worst['sparsity'] * 100:.0f} %, {worst['a']}–{worst['b']}: "
            f"{worst['jaccard']:.4f} measured, {worst[f'expected_{null}_jaccard']:.4f} expected), {verdict} 0.005"
        ) in text
        assert raw.close(head["random_nulls"][control]["largest_gap"], largest)
        assert head["random_nulls"][control]["within"] == (largest <= 0.005)
    assert "shared seeds" not in text and "same seeds" not in text  # the old caveat blamed shared seeds: gone


def test_controls_table_is_the_pretrained_control_of_the_long_controls_csv(raw):
    table = pd.read_csv(raw.reports / "tables" / "controls.csv", dtype={"lang": str})
    assert list(table.columns) == [
        "task",
        "sparsity",
        "lang",
        "jaccard_with_pretrained",
        "layerwise_null_jaccard",
        "global_null_jaccard",
        "threshold",
        "ties_at_threshold",
        "pretrained_ties_at_threshold",
    ]
    for task in raw.study.tasks:
        long = raw.overlap(task, "controls")
        assert set(long["control"]) == set(CONTROLS)
        pretrained = long[long["control"] == "pretrained"]
        mine = table[table["task"] == task]
        per_seed = pretrained.groupby(["sparsity", "lang"], as_index=False).mean(numeric_only=True)
        assert len(mine) == len(per_seed) == len(pretrained) / len(raw.study.seeds)  # a row per (sparsity, language)
        for r in per_seed.itertuples():
            row = mine[(mine["sparsity"] == r.sparsity) & (mine["lang"] == r.lang)].iloc[0]
            assert math.isclose(row["jaccard_with_pretrained"], r.jaccard, rel_tol=1e-5)
            assert math.isclose(row["layerwise_null_jaccard"], r.expected_layerwise_jaccard, rel_tol=1e-5)
            assert math.isclose(row["global_null_jaccard"], r.expected_global_jaccard, rel_tol=1e-5)
            assert row["pretrained_ties_at_threshold"] == r.control_ties_at_threshold
            assert row["ties_at_threshold"] == r.ties_at_threshold


def test_zero_share_of_theta0_is_shown_once_from_a_prune_run(raw, smoke):
    _, _, sections = smoke
    share = raw.prune("ner", "en")["theta0_zero_share"]
    assert raw.close(raw.summary()["theta0_zero_share"], share)
    intro = sections[0].text()
    assert intro.count("Exactly-zero weights in θ0") == 1 and report.pct(share, digits=2) in intro
