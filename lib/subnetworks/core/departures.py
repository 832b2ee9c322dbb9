"""Where sub-networks leave the pre-trained-magnitude mask P: the weights each mask A gained (A ∖ P) and lost
(P ∖ A), how much those departures overlap between masks, and how much more the masks overlap than P and their
departure counts alone predict (the excess overlap).

Each departure set has two nulls: drawn at random in each tensor among all the weights it could be drawn from
(outside P for gains, inside P for losses), and among those a band around the pruning threshold only — the weights
that training moved far enough to cross it (the band is the caller's: a mask over the same tensors).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np

from . import nulls
from .masks import Grouping
from .overlap import PackedMasks, jaccard_from_counts


@dataclass
class Departures:
    """Masks A (rows of ``masks``) against P and a band of weights, all packed over the same tensors."""

    masks: PackedMasks
    p: np.ndarray  # P's words
    band: np.ndarray  # the band's words

    def sets(self, which: str) -> PackedMasks:
        """The gained (A ∖ P) or lost (P ∖ A) weights of every mask, packed like the masks."""
        words = self.masks.words & ~self.p if which == "gained" else self.p & ~self.masks.words
        return PackedMasks(self.masks.labels, words, self.masks.segments)

    def pools(self, names: Sequence[str]) -> dict[str, np.ndarray]:
        """Per tensor of ``names``: P's size, the whole tensor's, and the band inside and outside P."""
        rows = np.stack([self.p, self.band & self.p, self.band & ~self.p])
        counts, sizes = PackedMasks(["p", "band_p", "band_out"], rows, self.masks.segments).tensor_counts(names)
        return {"p": counts[0], "n": sizes, "band_p": counts[1], "band_out": counts[2]}


def _nulls(i: int, j: int, pools: dict, counts: dict) -> dict:
    """The nulls of masks i and j: of their gains and losses (in the whole pool, and in the band), and of the masks."""
    lost, gained = counts["lost"][[i, j]], counts["gained"][[i, j]]
    row = {}
    for which, pool, band_pool in (
        ("gained", pools["n"] - pools["p"], pools["band_out"]),
        ("lost", pools["p"], pools["band_p"]),
    ):
        row[f"expected_{which}_jaccard"] = nulls.layerwise(counts[which][[i, j]], pool)[0]
        row[f"expected_{which}_jaccard_band"] = nulls.layerwise(counts[which][[i, j]], band_pool)[0]
    row["jaccard_p"] = nulls.jaccard_given_p(pools["p"], lost, gained, pools["p"], pools["n"] - pools["p"])
    row["jaccard_p_band"] = nulls.jaccard_given_p(pools["p"], lost, gained, pools["band_p"], pools["band_out"])
    return row


def departure_pairs(d: Departures, key: Grouping | None = None) -> list[dict]:
    """One row per (group, mask a, mask b): Jaccard of their gains, of their losses and of the masks, each next to
    its nulls, and the masks' excess overlap over what P and the departure counts predict (both nulls)."""
    gained, lost = d.sets("gained"), d.sets("lost")
    rows = []
    for group, names in d.masks.groups(key).items():
        pools = d.pools(names)
        counts = {"gained": gained.tensor_counts(names)[0], "lost": lost.tensor_counts(names)[0]}
        jaccard = {
            "": jaccard_from_counts(*d.masks.counts(names)[:2]),
            "gained_": jaccard_from_counts(*gained.counts(names)[:2]),
            "lost_": jaccard_from_counts(*lost.counts(names)[:2]),
        }
        for i, j in combinations(range(len(d.masks.labels)), 2):
            row = {
                "group": group,
                "a": d.masks.labels[i],
                "b": d.masks.labels[j],
                **{f"{k}jaccard": float(v[i, j]) for k, v in jaccard.items()},
                **_nulls(i, j, pools, counts),
            }
            row["excess"] = nulls.excess(row["jaccard"], row["jaccard_p"])
            row["excess_band"] = nulls.excess(row["jaccard"], row["jaccard_p_band"])
            rows.append(row)
    return rows


def departure_counts(d: Departures, key: Grouping | None = None) -> list[dict]:
    """One row per (group, mask): how many weights it gained and lost, how many of those lie in the band, and the
    group's size, P's share of it and the band's."""
    gained, lost = d.sets("gained"), d.sets("lost")
    in_band = PackedMasks(d.masks.labels, (gained.words | lost.words) & d.band, d.masks.segments)
    rows = []
    for group, names in d.masks.groups(key).items():
        pools = d.pools(names)
        g, lo, b = (s.tensor_counts(names)[0].sum(axis=1) for s in (gained, lost, in_band))
        for m, label in enumerate(d.masks.labels):
            rows.append(
                {
                    "group": group,
                    "mask": label,
                    "gained": int(g[m]),
                    "lost": int(lo[m]),
                    "departures_in_band": int(b[m]),
                    "size": int(pools["n"].sum()),
                    "p_kept": int(pools["p"].sum()),
                    "band_size": int((pools["band_p"] + pools["band_out"]).sum()),
                }
            )
    return rows
