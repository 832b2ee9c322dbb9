"""Linear CKA against closed forms: identity, independence, invariances, and the shuffled-pair null."""

import math

import pytest
import torch

from subnetworks.core.cka import centred_gram, cka_of_grams, linear_cka, shuffled_null


def _random(n: int, d: int, seed: int) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_identical_representations_have_cka_one():
    x = _random(50, 7, 0)
    assert linear_cka(x, x) == pytest.approx(1.0, abs=1e-12)


def test_independent_representations_are_near_zero_when_items_outnumber_dimensions():
    # E[CKA] of independent Gaussian features is about d/n for n >> d: here 0.0025
    assert linear_cka(_random(2000, 5, 1), _random(2000, 5, 2)) < 0.02


def test_cka_is_invariant_to_orthogonal_transforms_and_isotropic_scaling_but_not_to_anisotropic_scaling():
    x, y = _random(60, 6, 3), _random(60, 4, 4)
    y = y + x[:, :4]  # related, so the value is neither 0 nor 1
    q, _ = torch.linalg.qr(_random(6, 6, 5))
    base = linear_cka(x, y)
    assert 0.2 < base < 0.95
    assert linear_cka(x @ q, y) == pytest.approx(base, abs=1e-12)
    assert linear_cka(3.5 * x, 0.01 * y) == pytest.approx(base, abs=1e-12)
    assert linear_cka(x + 10.0, y) == pytest.approx(base, abs=1e-12)  # centring: a shift changes nothing
    stretched = x * torch.tensor([10.0, 1, 1, 1, 1, 1], dtype=torch.float64)
    assert abs(linear_cka(stretched, y) - base) > 0.01


def test_cka_of_a_representation_and_one_of_its_two_equal_orthogonal_directions_is_one_over_root_two():
    # X = [a, b] with a ⊥ b, both centred with norm 1; Y = a: K_x = aaᵀ + bbᵀ, K_y = aaᵀ, so
    # <K_x, K_y> = 1, ‖K_x‖ = √2, ‖K_y‖ = 1
    a = torch.tensor([1.0, -1.0, 1.0, -1.0], dtype=torch.float64) / 2
    b = torch.tensor([1.0, 1.0, -1.0, -1.0], dtype=torch.float64) / 2
    assert linear_cka(torch.stack([a, b], 1), a[:, None]) == pytest.approx(1 / math.sqrt(2), abs=1e-12)


def test_cka_needs_the_same_items():
    with pytest.raises(ValueError, match="same items"):
        linear_cka(_random(5, 2, 0), _random(6, 2, 0))


def test_the_shuffled_null_breaks_the_pairing_and_is_seeded():
    x = _random(200, 8, 6)
    q, _ = torch.linalg.qr(_random(8, 8, 7))
    y = x @ q + 0.1 * _random(200, 8, 8)  # y is x rotated, plus a little noise: CKA near 1 when paired
    kx, ky = centred_gram(x), centred_gram(y)
    paired = cka_of_grams(kx, ky)
    null = shuffled_null(kx, ky, 30, seed=1)
    assert paired > 0.95 and null.shape == (30,)
    assert null.max() < 0.2 and null.mean() == pytest.approx(linear_cka(x, _random(200, 8, 9)), abs=0.1)
    assert (shuffled_null(kx, ky, 30, seed=1) == null).all()
    assert not (shuffled_null(kx, ky, 30, seed=2) == null).all()
    identical = shuffled_null(kx, kx, 10, seed=0)  # a permuted copy of itself is no longer the same items
    assert identical.max() < 0.5
