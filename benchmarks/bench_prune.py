"""One global magnitude-prune call, 20 % → 50 % sparsity, on all prunable tensors of a model shape: time and
peak extra memory, ours (:func:`subnetworks.core.prune.magnitude_prune`) vs ``torch.nn.utils.prune.global_unstructured``
with ``L1Unstructured`` on the same tensors (modules already carrying the 20 % mask, as torch's IMP would).

Each method runs in a fresh child process (``python -m benchmarks.bench_prune --child …``) so that its memory
figure is not disturbed by what ran before; inside it the call is repeated (warm-up dropped) on fresh copies of
the state, with the kernel's peak-RSS mark reset before every call. The child also checks that every method
returns the same mask.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from .common import MODEL_LABELS, REPO, PeakRSS, Row, mbytes, median, prunable_shapes, seconds

START, TARGET = 0.2, 0.5
METHODS = ("ours", "torch")


def _weights(shapes, seed: int = 0):
    import torch

    g = torch.Generator().manual_seed(seed)
    return {n: torch.randn(s, generator=g).mul_(0.02) for n, s in shapes.items()}


def child(shapes: dict[str, tuple[int, ...]], method: str, repeats: int, warmup: int) -> dict:
    import torch

    from subnetworks.core.masks import Mask
    from subnetworks.core.prune import magnitude_prune

    shapes = {n: tuple(s) for n, s in shapes.items()}
    weights = _weights(shapes)
    start_mask = magnitude_prune(weights, Mask.full(shapes), START)
    numel = start_mask.numel
    keep = numel - round(TARGET * numel)

    if method == "torch":
        from torch import nn
        from torch.nn.utils import prune

        amount = start_mask.kept - keep  # torch prunes this many of the still-unpruned weights

        def setup():
            holders = []
            for name, w in weights.items():
                holder = nn.Module()
                holder.weight = nn.Parameter(w)
                prune.custom_from_mask(holder, "weight", start_mask.tensors[name])
                holders.append(holder)
            return holders

        def call(holders):
            prune.global_unstructured(
                [(h, "weight") for h in holders], pruning_method=prune.L1Unstructured, amount=amount
            )
            return holders

        def result(holders) -> dict:
            return {n: h.weight_mask.bool() for n, h in zip(weights, holders)}
    else:

        def setup():
            return None

        def call(_):
            return magnitude_prune(weights, start_mask, TARGET)

        def result(mask) -> dict:
            return mask.tensors

    times, extras, method_used = [], [], ""
    out = None
    for r in range(warmup + repeats):
        state = setup()
        with PeakRSS() as probe:
            t0 = time.perf_counter()
            out = call(state)
            elapsed = time.perf_counter() - t0
        method_used = probe.method
        if r >= warmup:
            times.append(elapsed)
            extras.append(probe.extra)
        if r < warmup + repeats - 1:
            del out, state
    masks = result(out)
    kept = int(sum(int(t.sum()) for t in masks.values()))
    reference = magnitude_prune(weights, start_mask, TARGET)
    same = all(torch.equal(masks[n], reference.tensors[n]) for n in reference.tensors)
    return {
        "method": method,
        "times_s": times,
        "extra_bytes": extras,
        "memory_probe": method_used,
        "weights": numel,
        "weight_bytes": 4 * numel,
        "kept": kept,
        "expected_kept": keep,
        "same_as_ours": same,
    }


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def _spawn(jobs: list[dict], repeats: int, warmup: int) -> list[dict]:
    """Run ``jobs`` ({model, method, shapes}) one after the other in one fresh Python process."""
    spec = json.dumps({"jobs": jobs, "repeats": repeats, "warmup": warmup})
    cmd = [sys.executable, "-m", "benchmarks.bench_prune", "--child"]
    env = {**os.environ, "OMP_NUM_THREADS": str(torch_threads())}
    done = subprocess.run(cmd, cwd=REPO, input=spec, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"prune child {[(j['model'], j['method']) for j in jobs]} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(models: list[str], quick: bool, repeats: int, warmup: int, log=print) -> list[Row]:
    rows = []
    jobs = [{"model": key, "method": m, "shapes": prunable_shapes(key, quick)} for key in models for m in METHODS]
    if quick:  # one process for everything: the figures are meaningless anyway, and a process start costs seconds
        results = _spawn(jobs, repeats, warmup)
    else:  # a fresh process per measurement, so no allocator state carries over from one method to the next
        results = [r for job in jobs for r in _spawn([job], repeats, warmup)]
    for key in models:
        res = {r["method"]: r for r in results if r["model"] == key}
        t = {m: median(r["times_s"]) for m, r in res.items()}
        mem = {m: max(1.0, median(r["extra_bytes"])) for m, r in res.items()}
        wbytes = res["ours"]["weight_bytes"]
        log(f"  prune [{key}] " + ", ".join(f"{m} {seconds(t[m])} +{mbytes(mem[m])}" for m in METHODS))
        for m, r in res.items():
            if not r["same_as_ours"] or r["kept"] != r["expected_kept"]:
                raise RuntimeError(
                    f"{m} returned a different mask than magnitude_prune ({r['kept']} kept vs {r['expected_kept']})"
                )
        label = MODEL_LABELS[key]
        n = res["ours"]["weights"]
        base_note = (
            f"{label}: {n / 1e6:.1f}M prunable weights ({mbytes(wbytes)} fp32), {START:.0%} → {TARGET:.0%}; "
            "all methods return the same mask"
        )
        rows.append(
            Row(
                "prune_time",
                "global magnitude prune 20 %→50 %: time, ours / torch global_unstructured(L1Unstructured)",
                key,
                seconds(t["ours"]),
                seconds(t["torch"]),
                t["ours"] / t["torch"],
                "< 1 (faster)",
                t["ours"] < t["torch"],
                note=base_note,
                detail={m: r for m, r in res.items()},
            )
        )
        rows.append(
            Row(
                "prune_memory",
                "global magnitude prune 20 %→50 %: peak extra memory / prunable weights' bytes",
                key,
                f"+{mbytes(mem['ours'])} ({mem['ours'] / wbytes:.2f}×)",
                f"torch +{mbytes(mem['torch'])} ({mem['torch'] / wbytes:.2f}×)",
                mem["ours"] / wbytes,
                "≤ 1.5×",
                mem["ours"] / wbytes <= 1.5,
                note=(
                    f"peak RSS above the level before the call ({res['ours']['memory_probe']}), fresh process; "
                    f"ours/torch memory {mem['ours'] / mem['torch']:.2f}"
                ),
                detail={"extra_bytes_median": mem, "weight_bytes": wbytes},
            )
        )
    return rows


def main() -> None:
    """Child process: read the jobs as JSON on stdin, print one JSON line of results."""
    if sys.argv[1:] != ["--child"]:
        sys.exit("internal: run through benchmarks/run.py")
    spec = json.loads(sys.stdin.read())
    out = [
        {"model": j["model"], **child(j["shapes"], j["method"], spec["repeats"], spec["warmup"])} for j in spec["jobs"]
    ]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
