"""Sub-network masks: one boolean tensor per prunable parameter of the *base encoder*.

Names carry no head prefix (``bert.``, ``roberta.``), so a mask found with an MLM head applies unchanged to
sequence- and token-classification models of the same encoder. How names group into layers and module types is
the encoder family's business (:mod:`subnetworks.nn.families`): here a grouping is any function name → group.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import torch

from .maskfile import MaskError

Grouping = Callable[[str], str]  # parameter name -> its group (layer, module type, …)


def by_tensor(name: str) -> str:
    return name


@dataclass
class Mask:
    """A validated mapping from base-encoder parameter name to a bool tensor of that parameter's shape."""

    tensors: dict[str, torch.Tensor]
    meta: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, tensor in self.tensors.items():
            if tensor.dtype != torch.bool:
                raise MaskError(f"mask tensor {name!r} has dtype {tensor.dtype}, expected torch.bool")

    @classmethod
    def full(cls, shapes: Mapping[str, Iterable[int]], **meta: str) -> Mask:
        """The dense mask (everything kept) for the given parameter shapes."""
        return cls({n: torch.ones(tuple(s), dtype=torch.bool) for n, s in shapes.items()}, dict(meta))

    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {n: tuple(t.shape) for n, t in self.tensors.items()}

    @property
    def numel(self) -> int:
        return sum(t.numel() for t in self.tensors.values())

    @property
    def kept(self) -> int:
        return sum(int(torch.count_nonzero(t)) for t in self.tensors.values())  # bool sum() goes through int64

    @property
    def density(self) -> float:
        return self.kept / self.numel if self.numel else 1.0

    @property
    def sparsity(self) -> float:
        return 1.0 - self.density

    def density_by(self, key: Grouping = by_tensor) -> dict[str, float]:
        """Density per group of tensors (per tensor by default)."""
        kept: dict[str, int] = {}
        total: dict[str, int] = {}
        for name, tensor in self.tensors.items():
            k = key(name)
            kept[k] = kept.get(k, 0) + int(torch.count_nonzero(tensor))
            total[k] = total.get(k, 0) + tensor.numel()
        return {k: kept[k] / total[k] for k in total}

    def _check_compatible(self, other: Mask) -> None:
        if self.shapes != other.shapes:
            missing = sorted(set(self.shapes) ^ set(other.shapes))
            wrong = sorted(n for n in set(self.shapes) & set(other.shapes) if self.shapes[n] != other.shapes[n])
            raise MaskError(
                f"masks cover different parameters: names only in one {missing[:3]}, shapes differ {wrong[:3]}"
            )

    def __and__(self, other: Mask) -> Mask:
        self._check_compatible(other)
        return Mask({n: t & other.tensors[n] for n, t in self.tensors.items()})

    def __or__(self, other: Mask) -> Mask:
        self._check_compatible(other)
        return Mask({n: t | other.tensors[n] for n, t in self.tensors.items()})

    def __invert__(self) -> Mask:
        return Mask({n: ~t for n, t in self.tensors.items()})

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Mask) or self.shapes != other.shapes:
            return False
        return all(torch.equal(t, other.tensors[n]) for n, t in self.tensors.items())

    def issubset(self, other: Mask) -> bool:
        self._check_compatible(other)
        return all(not bool((t & ~other.tensors[n]).any()) for n, t in self.tensors.items())

    def validate_against(self, shapes: Mapping[str, tuple[int, ...]], model_name: str | None = None) -> None:
        """Raise :class:`MaskError` naming the first mismatch between this mask and a model's parameters."""
        if model_name and self.meta.get("model") and self.meta["model"] != model_name:
            raise MaskError(
                f"mask was found on model {self.meta['model']!r} but is applied to {model_name!r}: "
                "use a mask of the same pre-trained model"
            )
        for name, shape in self.shapes.items():
            if name not in shapes:
                raise MaskError(
                    f"mask parameter {name!r} does not exist in the model "
                    f"(model has e.g. {sorted(shapes)[:2]}): the mask comes from another architecture"
                )
            if tuple(shapes[name]) != shape:
                raise MaskError(f"mask parameter {name!r} has shape {shape} but the model's has {tuple(shapes[name])}")
