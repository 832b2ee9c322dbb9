"""Linear CKA (Kornblith et al. 2019): how alike two sets of representations of the same n items are, up to an
orthogonal transform and isotropic scaling of either; and its null for items that are *not* paired.

On n items in d dimensions CKA is computed from the n × n Gram matrices, so its cost is O(n²·d) whatever d is; with
n a few hundred parallel sentences that is milliseconds a layer. CKA of unrelated representations is not 0 on a
finite sample (it grows with d/n), which is why every CKA here comes with the CKA of the same representations with
the pairing broken (:func:`shuffled_null`).
"""

from __future__ import annotations

import numpy as np
import torch


def centred_gram(x: torch.Tensor) -> torch.Tensor:
    """The n × n Gram matrix of ``x``'s rows after centring its columns (in double precision): all CKA needs of x."""
    x = x.double()
    x = x - x.mean(0, keepdim=True)
    return x @ x.T


def cka_of_grams(kx: torch.Tensor, ky: torch.Tensor) -> float:
    """CKA from two :func:`centred_gram` matrices of the same items (compute each Gram matrix once, pair them many
    times)."""
    den = torch.linalg.norm(kx) * torch.linalg.norm(ky)
    return float((kx * ky).sum() / den) if den > 0 else float("nan")


def linear_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    """CKA of ``x`` (n × d₁) and ``y`` (n × d₂), row i of each being the same item: ⟨K_x, K_y⟩ / (‖K_x‖ ‖K_y‖) with
    K the centred Gram matrices (equal to ‖yᵀx‖²_F / (‖xᵀx‖_F ‖yᵀy‖_F) on centred features)."""
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"CKA needs the same items in both: {x.shape[0]} rows against {y.shape[0]}")
    return cka_of_grams(centred_gram(x), centred_gram(y))


def shuffled_null(kx: torch.Tensor, ky: torch.Tensor, shuffles: int, seed: int = 0) -> np.ndarray:
    """CKA of two sets of representations (their :func:`centred_gram` matrices) with the rows of the second permuted
    (``shuffles`` seeded permutations): what CKA gives for representations of *different* items of the same kind —
    the null a parallel pairing must exceed."""
    generator = torch.Generator().manual_seed(seed)
    out = np.empty(shuffles)
    for i in range(shuffles):
        perm = torch.randperm(ky.shape[0], generator=generator)
        out[i] = cka_of_grams(kx, ky[perm][:, perm])  # the Gram matrix of y's rows in permuted order
    return out
