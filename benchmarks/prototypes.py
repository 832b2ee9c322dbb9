"""An optional fused pairwise-intersection kernel, measured next to the lib for information only.

:func:`pairwise_counts_numba` computes exactly what :func:`subnetworks.core.overlap.intersections` does (|A∩B| for
every pair of rows of a packed mask matrix) in one compiled pass that ANDs, popcounts and accumulates 4 × 4 pairs
per loaded word tile, where numpy needs separate passes with temporaries. numba is not a dependency of the
project: the benchmark times the kernel (and checks its counts against the lib's) only where numba is installed.
Every other change first prototyped here now lives in the lib, and the benchmarks measure the lib.
"""

from __future__ import annotations

import numpy as np

_NUMBA_KERNEL = None


def _numba_kernel():
    """Compile (once) a fused AND + popcount kernel over 4×4 tiles of mask pairs, parallel over column blocks."""
    global _NUMBA_KERNEL
    if _NUMBA_KERNEL is not None:
        return _NUMBA_KERNEL
    from numba import njit, prange, types, uint64
    from numba.extending import intrinsic

    @intrinsic
    def ctpop(typingctx, x):
        def codegen(context, builder, signature, args):
            return builder.call(builder.module.declare_intrinsic("llvm.ctpop", [args[0].type]), args)

        return types.uint64(types.uint64), codegen

    @njit(parallel=True, cache=False)
    def kernel(words, block):
        n, w = words.shape
        tiles = (n + 3) // 4
        n_blocks = (w + block - 1) // block
        partial = np.zeros((n_blocks, tiles * 4, tiles * 4), np.int64)
        for b in prange(n_blocks):
            s, e = b * block, min(w, (b + 1) * block)
            for ti in range(tiles):
                i0, i1, i2, i3 = 4 * ti, min(4 * ti + 1, n - 1), min(4 * ti + 2, n - 1), min(4 * ti + 3, n - 1)
                for tj in range(ti, tiles):
                    j0, j1, j2, j3 = 4 * tj, min(4 * tj + 1, n - 1), min(4 * tj + 2, n - 1), min(4 * tj + 3, n - 1)
                    c00 = c01 = c02 = c03 = c10 = c11 = c12 = c13 = uint64(0)
                    c20 = c21 = c22 = c23 = c30 = c31 = c32 = c33 = uint64(0)
                    for k in range(s, e):
                        a0, a1, a2, a3 = words[i0, k], words[i1, k], words[i2, k], words[i3, k]
                        b0, b1, b2, b3 = words[j0, k], words[j1, k], words[j2, k], words[j3, k]
                        # fmt: off
                        c00 += ctpop(a0 & b0); c01 += ctpop(a0 & b1); c02 += ctpop(a0 & b2); c03 += ctpop(a0 & b3)  # noqa: E702
                        c10 += ctpop(a1 & b0); c11 += ctpop(a1 & b1); c12 += ctpop(a1 & b2); c13 += ctpop(a1 & b3)  # noqa: E702
                        c20 += ctpop(a2 & b0); c21 += ctpop(a2 & b1); c22 += ctpop(a2 & b2); c23 += ctpop(a2 & b3)  # noqa: E702
                        c30 += ctpop(a3 & b0); c31 += ctpop(a3 & b1); c32 += ctpop(a3 & b2); c33 += ctpop(a3 & b3)  # noqa: E702
                        # fmt: on
                    t = partial[b]
                    r, q = 4 * ti, 4 * tj
                    t[r, q], t[r, q + 1], t[r, q + 2], t[r, q + 3] = c00, c01, c02, c03
                    t[r + 1, q], t[r + 1, q + 1], t[r + 1, q + 2], t[r + 1, q + 3] = c10, c11, c12, c13
                    t[r + 2, q], t[r + 2, q + 1], t[r + 2, q + 2], t[r + 2, q + 3] = c20, c21, c22, c23
                    t[r + 3, q], t[r + 3, q + 1], t[r + 3, q + 2], t[r + 3, q + 3] = c30, c31, c32, c33
        total = partial.sum(axis=0)
        out = np.empty((n, n), np.int64)
        for i in range(n):
            for j in range(n):
                out[i, j] = total[i, j] if i // 4 <= j // 4 else total[j, i]
        return out

    _NUMBA_KERNEL = kernel
    return kernel


def pairwise_counts_numba(words: np.ndarray, block: int = 1024) -> np.ndarray:
    """The counts of :func:`subnetworks.core.overlap.intersections` in one fused, compiled pass (needs numba, which is
    not a dependency of the project: ImportError without it). Each loaded word serves four pairs."""
    return _numba_kernel()(np.ascontiguousarray(words), block)


def numba_version() -> str | None:
    try:
        import numba
    except ImportError:
        return None
    return numba.__version__
