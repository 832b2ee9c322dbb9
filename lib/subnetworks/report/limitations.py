"""*Limitations*, written from this run's numbers: what a reader should not conclude from them, and why."""

from __future__ import annotations

from .output import Report, Section, viewable
from .overlap_tables import controls_table, overlap_pairs_table
from .text import sp
from .uncertainty import score_intervals, transfer_intervals


def chance_sentence(rep: Report) -> str:
    """How many sub-network scores and transfer cells sit at chance, per task and sparsity: those say nothing about
    the sub-network, only that the training did not lift the model off the majority class."""
    res, parts = rep.results, []
    scores, cells = score_intervals(res), transfer_intervals(res)
    scores = scores[scores["mask"] == "imp"] if len(scores) else scores
    for task in res.tasks:
        for sparsity in res.sparsities:
            rows = [f[(f["task"] == task) & (f["sparsity"] == sparsity)] for f in (scores, cells) if len(f)]
            flagged, total = sum(int(r["at_chance"].sum()) for r in rows), sum(len(r) for r in rows)
            if flagged:
                parts.append(f"{task} at {sp(sparsity)}: {flagged} of {total}")
    if not parts:
        return "**At chance:** no IMP score or transfer cell is at chance."
    return (
        "**At chance** (IMP scores and transfer cells whose interval reaches the majority-class rate; they are left "
        f"out of the means, not counted as transfer): {'; '.join(parts)}."
    )


def pretraining_sentence(rep: Report) -> str:
    """How close the sub-networks sit to P, and the pairwise overlap P alone implies: Jaccard distance is a metric,
    so J(A, B) ≥ 1 − d(A, P) − d(B, P)."""
    res, parts = rep.results, []
    controls, pairs = controls_table(res), overlap_pairs_table(res)
    for task in res.tasks:
        for sparsity in res.sparsities:
            c = controls[(controls["task"] == task) & (controls["sparsity"] == sparsity)]
            p = pairs[(pairs["task"] == task) & (pairs["sparsity"] == sparsity)]
            if c.empty or p.empty:
                continue
            distance = 1 - c.set_index("lang")["jaccard_with_pretrained"]
            floor = max(0.0, min(1 - distance[a] - distance[b] for a, b in zip(p["a"], p["b"])))
            parts.append(
                f"{task} at {sp(sparsity)}: Jaccard with P {c['jaccard_with_pretrained'].min():.3f}–"
                f"{c['jaccard_with_pretrained'].max():.3f}, so P alone implies pairwise overlaps of at least "
                f"{floor:.3f} (measured: mean {p['jaccard'].mean():.3f})"
            )
    if not parts:
        return ""
    return (
        "**Overlap inherited from pre-training:** the closer each sub-network is to P, the magnitude mask of the "
        "pre-trained weights, the more of their overlap P alone explains; read the excess over P, not the raw "
        f"overlap. {'; '.join(parts)}."
    )


def data_sentence(rep: Report) -> str:
    """Test-set sizes and the tasks that stand in for the paper's (the offline demo's)."""
    res, study = rep.results, rep.results.study
    sizes = res.data.groupby("task")["test"].min() if len(res.data) else {}
    parts = [f"{task} {int(sizes[task])}" for task in res.tasks if task in sizes]
    stand_ins = [f"{task} ({study.task(task).label})" for task in res.tasks if study.task(task).source != "hub"]
    text = f"**Test sets:** the smallest per task: {', '.join(parts)} examples a language" if parts else ""
    if text:
        text += "; a difference inside an interval is noise, whatever its sign."
    if stand_ins:
        text += f" **Stand-in tasks** (not the paper's data): {'; '.join(stand_ins)}."
    return text


def seeds_sentence(rep: Report) -> str:
    """What the seeds cover: the noise floor needs more than one, and transfer and the controls may run at fewer."""
    study = rep.results.study
    transfer, controls = study.transfer_seeds, [s for s in study.seeds if study.scores_controls(s)]
    text = f"**Seeds:** IMP at {len(study.seeds)} seed(s)"
    if len(study.seeds) < 2:
        text += ": no cross-seed noise floor, so no overlap or score can be told from the seed's own variation"
    if len(transfer) < len(study.seeds) or len(controls) < len(study.seeds):
        text += (
            f"; transfer at seed(s) {', '.join(map(str, transfer))} and the controls at "
            f"{', '.join(map(str, controls)) or 'none'}: their intervals cover the test examples, not the seed"
        )
    return text + "."


def similarity_limitation(rep: Report) -> str:
    """What representation similarity measures here, where it was computed: the pre-trained encoder masked, on few
    sentences of one corpus."""
    sim = rep.results.similarity
    if sim.empty:
        return ""
    corpus = rep.results.study.similarity.corpus
    return (
        f"**Representation similarity** is measured on θ0 with each mask applied, before fine-tuning (the fine-tuned "
        f"weights are not kept), on {int(sim['sentences'].iloc[0])} parallel sentences of `{corpus}`'s test split, "
        "the same sentences for every task's masks: it says what the masks leave of the pre-trained encoder's "
        "cross-lingual alignment, not what the fine-tuned sub-networks compute."
    )


@viewable
def limitations_section(rep: Report) -> Section:
    sentences = [chance_sentence(rep), pretraining_sentence(rep), similarity_limitation(rep), data_sentence(rep)]
    sentences.append(seeds_sentence(rep))
    return Section("Limitations", ["\n\n".join(f"* {s}" for s in sentences if s)])
