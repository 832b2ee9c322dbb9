"""*What was run*: every training setting per task, the code (commits) the runs came from, the machine and the time,
so that a reader can tell what the numbers rest on without opening the params file or the README."""

from __future__ import annotations

import pandas as pd

from ..spec import TrainConfig, git_commit, uncommitted_changes
from .output import Report, Section, viewable
from .summary import machine


def settings_table(rep: Report) -> pd.DataFrame:
    """One row per task and kind of training (IMP rounds, transfer): steps, batch, rates, warm-up, what is frozen,
    and the held-out examples per language (MLM: with how many mask draws)."""
    res, study = rep.results, rep.results.study
    test = res.data.groupby("task")["test"].agg(["min", "max"]) if len(res.data) else pd.DataFrame()
    rows = []
    for task in res.tasks:
        cfg = study.task(task)
        sizes = test.loc[task] if task in test.index else None
        held_out = "–" if sizes is None else str(sizes["min"])
        if sizes is not None and sizes["max"] != sizes["min"]:
            held_out += f"–{sizes['max']}"
        if cfg.kind == "mlm":
            held_out += f" (masked {cfg.eval_mask_draws}×)"
        for training, train in (("IMP rounds", cfg.imp_train), ("transfer", cfg.transfer_train)):
            rows.append({"task": task, "training": training, **_train_columns(train), "test examples": held_out})
    return rep.save_table(pd.DataFrame(rows), "training_settings")


def _train_columns(train: TrainConfig) -> dict[str, object]:
    return {
        "steps": train.max_steps or f"{train.epochs:g} epoch(s)",
        "batch": train.batch_size,
        "learning rate": f"{train.learning_rate:g}",
        "head learning rate": f"{train.head_learning_rate:g}" if train.head_learning_rate else "same",
        "warm-up": f"{train.warmup_ratio:.0%}",
        "weight decay": f"{train.weight_decay:g}",
        "word embeddings": "frozen" if train.freeze_word_embeddings else "trained",
    }


def commits_sentence(rep: Report) -> str:
    """Which commit(s) the finished runs came from: a report mixing code versions says so, with the runs of each."""
    seconds = rep.results.stage_seconds
    if seconds.empty:
        return "**Code:** no finished run recorded its commit."
    counts = seconds.groupby("commit")["run"].agg(list)
    if len(counts) == 1:
        return f"**Code:** every one of the {len(seconds)} runs at commit `{counts.index[0][:10]}`."
    parts = []
    for commit, runs in sorted(counts.items(), key=lambda kv: -len(kv[1])):
        shown = ", ".join(runs[:4]) + (" …" if len(runs) > 4 else "")
        parts.append(f"`{commit[:10]}`: {len(runs)} runs ({shown})")
    return f"**Code:** the runs come from {len(counts)} commits: " + "; ".join(parts) + "."


def rendering_sentence() -> str:
    """The code that drew this page: tables, figures, intervals and verdicts change with it, the runs do not."""
    commit = git_commit()
    dirty = " with changes to tracked files not yet committed" if uncommitted_changes() else ""
    return f"**Report:** tables, figures, intervals and verdicts drawn by the code at commit `{commit[:10]}`{dirty}."


def time_sentence(rep: Report) -> str:
    """Wall time of the last run that did work, and the compute the finished runs measured."""
    res = rep.results
    compute = float(res.stage_seconds["seconds"].sum()) if len(res.stage_seconds) else 0.0
    text = f"**Compute:** the finished runs measured {compute / 60:.0f} min of stage time"
    t = res.timings
    if t:
        text += (
            f"; the last `run` that did work took {t.get('total_seconds', 0) / 60:.0f} min wall on "
            f"{t.get('workers', 1)} worker(s) ({t.get('executed', '?')} of {t.get('stage_runs', '?')} runs executed)"
        )
    return text + "."


@viewable
def what_was_run_section(rep: Report) -> Section:
    study = rep.results.study
    seeds = ", ".join(map(str, study.seeds))
    lines = [
        f"**Seeds:** {seeds} (IMP at every seed; controls scored at "
        f"{', '.join(str(s) for s in study.seeds if study.scores_controls(s)) or 'none'}; transfer at "
        f"{', '.join(map(str, study.transfer_seeds))}).",
        commits_sentence(rep),
        rendering_sentence(),
        f"**Machine:** {machine(rep.results)}.",
        time_sentence(rep),
    ]
    return Section("What was run", ["  \n".join(lines), settings_table(rep)])
