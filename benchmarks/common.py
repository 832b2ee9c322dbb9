"""Shared pieces of the benchmarks: model shapes, timing, memory probes, the machine record, and result rows.

Every figure is a ratio of two timings (or sizes) taken in the same run, so the machine's speed cancels out;
timings are medians over repeats with warm-up rounds dropped, and competing variants are interleaved round by
round (A B C, B C A, …) so that drift in the machine's load hits all of them alike.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent

# Shapes of the two models every benchmark runs on. Weights are random: timing does not depend on them.
SHAPES: dict[str, dict[str, int]] = {
    # intfloat/multilingual-e5-small, the demo model
    "demo": dict(
        vocab_size=250_037, hidden_size=384, num_hidden_layers=12, num_attention_heads=12, intermediate_size=1536
    ),
    # bert-base-multilingual-cased
    "mbert": dict(
        vocab_size=119_547, hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072
    ),
}
# --quick: two tiny stand-ins with the same names, so a quick run produces every row of a full one.
QUICK_SHAPES: dict[str, dict[str, int]] = {
    "demo": dict(vocab_size=120, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37),
    "mbert": dict(vocab_size=90, hidden_size=24, num_hidden_layers=2, num_attention_heads=2, intermediate_size=40),
}
MODEL_LABELS = {
    "demo": "demo (e5-small shape: 12×384, FFN 1536, vocab 250,037)",
    "mbert": "mBERT shape (12×768, FFN 3072, vocab 119,547)",
}


def bert_config(model: str, quick: bool, **overrides):
    """A BertConfig of the named shape (random init, no download)."""
    from transformers import BertConfig

    shape = (QUICK_SHAPES if quick else SHAPES)[model]
    return BertConfig(**{**shape, "max_position_embeddings": 512, "type_vocab_size": 2, "pad_token_id": 0, **overrides})


def prunable_shapes(model: str, quick: bool) -> dict[str, tuple[int, ...]]:
    """Base-encoder name -> shape of every prunable tensor (the study's default selection), without allocating."""
    import torch
    from transformers import BertModel

    from subnetworks.core.prune import select_prunable
    from subnetworks.nn.families import FAMILIES

    with torch.device("meta"):
        base = BertModel(bert_config(model, quick))
    shapes = {n: tuple(p.shape) for n, p in base.named_parameters()}
    return {n: shapes[n] for n in select_prunable(shapes, FAMILIES["bert"].prunable)}


# ---------------------------------------------------------------------------------------------------- timing


def median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def interleaved(fns: Mapping[str, Callable[[], Any]], repeats: int, warmup: int = 1) -> dict[str, list[float]]:
    """Wall seconds of each function per round; the order rotates every round; warm-up rounds are dropped."""
    names = list(fns)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(warmup + repeats):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            start = time.perf_counter()
            fns[name]()
            elapsed = time.perf_counter() - start
            if r >= warmup:
                times[name].append(elapsed)
    return times


def timed(fn: Callable[[], Any], repeats: int, warmup: int = 1) -> list[float]:
    return interleaved({"f": fn}, repeats, warmup)["f"]


# ---------------------------------------------------------------------------------------------------- memory


def _proc_status() -> dict[str, int]:
    out = {}
    with open("/proc/self/status") as handle:
        for line in handle:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) * 1024
    return out


def _release_free_heap() -> None:
    """Hand memory that glibc's malloc keeps after ``free`` back to the OS, so that a block re-using it shows up
    in the RSS as new memory (without this, small allocations freed by an earlier call go unseen)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class PeakRSS:
    """Peak resident memory above the level at entry, of this process, while the block runs.

    On entry, garbage is collected and malloc's free memory returned to the OS; on Linux the kernel's
    high-water mark is then reset (``/proc/self/clear_refs``), so the figure is exact and sees every allocator
    (torch, numpy, Python). Elsewhere a thread samples the RSS every millisecond.
    """

    def __enter__(self) -> PeakRSS:
        import gc

        gc.collect()
        _release_free_heap()
        self.method = "VmHWM"
        try:
            with open("/proc/self/clear_refs", "w") as handle:
                handle.write("5")
            self.base = _proc_status()["VmRSS"]
        except OSError:
            self._start_sampler()
        return self

    def _start_sampler(self) -> None:
        import threading

        import psutil

        self.method = "sampled"
        proc = psutil.Process()
        self.base = proc.memory_info().rss
        self._peak = self.base
        self._stop = threading.Event()

        def sample() -> None:
            while not self._stop.is_set():
                self._peak = max(self._peak, proc.memory_info().rss)
                time.sleep(0.001)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()

    def __exit__(self, *exc) -> None:
        if self.method == "VmHWM":
            self.peak = _proc_status()["VmHWM"]
        else:
            self._stop.set()
            self._thread.join()
            self.peak = self._peak
        self.extra = max(0, self.peak - self.base)


# ---------------------------------------------------------------------------------------------------- machine


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10, check=False
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def load_average() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def machine() -> dict[str, Any]:
    """Where the figures were measured: CPU, cores, threads, memory, library versions, date, code version."""
    import numpy
    import torch
    import transformers

    from .prototypes import numba_version

    try:
        import accelerate

        accelerate_version = accelerate.__version__
    except ImportError:
        accelerate_version = None
    try:
        import psutil

        memory_gb = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        memory_gb = None
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "memory_gb": memory_gb,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "os": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "transformers": transformers.__version__,
        "accelerate (transformers' Trainer needs it; not a dependency)": accelerate_version,
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "git": (_git("rev-parse", "--short", "HEAD") + (" (dirty tree)" if _git("status", "--porcelain") else "")),
        "numba (optional fused overlap kernel, not a dependency)": numba_version(),
        "load_average_at_start": load_average(),
        "argv": " ".join(sys.argv),
    }


# ---------------------------------------------------------------------------------------------------- rows


@dataclass
class Row:
    """One line of the results table: ``ours`` over ``baseline`` is ``ratio``; ``met`` is None where no target."""

    bench: str  # stable id, e.g. "step_vs_dense"
    title: str
    model: str  # "demo", "mbert" or "" (model-independent)
    ours: str  # human-readable figure, e.g. "1.92 s"
    baseline: str
    ratio: float | None
    target: str
    met: bool | None
    note: str = ""
    detail: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def seconds(x: float) -> str:
    if x != x:  # NaN
        return "n/a"
    if x >= 100:
        return f"{x:.0f} s"
    if x >= 1:
        return f"{x:.2f} s"
    return f"{x * 1000:.1f} ms" if x >= 0.001 else f"{x * 1e6:.0f} µs"


def mbytes(x: float) -> str:
    return f"{x / 1e6:,.1f} MB" if x >= 1e5 else f"{x / 1e3:,.1f} kB"
