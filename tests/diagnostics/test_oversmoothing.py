"""Over-smoothing metrics against hand-computed values and closed forms."""

from __future__ import annotations

import math

import pytest
import torch

from fathom.diagnostics.oversmoothing import (
    class_separation,
    dirichlet_energy,
    dominant_subspace_distance,
    effective_rank,
    mad,
    mad_gap,
    numerical_rank,
    singular_values,
)
from fathom.errors import DataError


def undirected(pairs: list[tuple[int, int]]) -> torch.Tensor:
    src = [a for a, b in pairs] + [b for a, b in pairs]
    dst = [b for a, b in pairs] + [a for a, b in pairs]
    return torch.tensor([src, dst])


PATH3 = undirected([(0, 1), (1, 2)])


def cycle(n: int) -> torch.Tensor:
    return undirected([(i, (i + 1) % n) for i in range(n)])


# ---------------------------------------------------------------- Dirichlet energy


def test_energy_of_a_constant_signal_is_zero() -> None:
    x = torch.full((5, 3), 2.5)
    assert dirichlet_energy(x, cycle(5)) == 0.0


def test_energy_of_a_path_signal_by_hand() -> None:
    # x = [0, 1, 3] on 0-1-2: directed entries (0,1),(1,0): 1 each; (1,2),(2,1): 4 each.
    x = torch.tensor([[0.0], [1.0], [3.0]])
    assert dirichlet_energy(x, PATH3) == pytest.approx(10 / 3)


def test_energy_of_an_alternating_cycle_signal() -> None:
    # +1/-1 on an even cycle: every directed entry contributes 4; 2n entries over n nodes.
    n = 6
    x = torch.tensor([[(-1.0) ** i] for i in range(n)])
    assert dirichlet_energy(x, cycle(n)) == pytest.approx(8.0)


def test_energy_sums_channels_and_ignores_self_loops() -> None:
    x = torch.tensor([[0.0, 0.0], [1.0, 2.0], [3.0, 0.0]])
    with_loops = torch.cat([PATH3, torch.tensor([[0, 1, 2], [0, 1, 2]])], 1)
    # (0,1): 1+4 = 5 twice; (1,2): 4+4 = 8 twice -> 26 / 3
    assert dirichlet_energy(x, with_loops) == pytest.approx(26 / 3)


def test_sym_energy_vanishes_on_the_degree_scaled_constant() -> None:
    ei = PATH3  # degrees 1, 2, 1
    x = torch.tensor([[math.sqrt(2.0)], [math.sqrt(3.0)], [math.sqrt(2.0)]])
    assert dirichlet_energy(x, ei, normalization="sym") == pytest.approx(0.0, abs=1e-12)
    assert dirichlet_energy(x, ei) > 0.01


def test_energy_rejects_bad_graphs() -> None:
    with pytest.raises(DataError, match="out of range"):
        dirichlet_energy(torch.ones(2, 1), torch.tensor([[0], [5]]))
    with pytest.raises(DataError, match="shape"):
        dirichlet_energy(torch.ones(2, 1), torch.tensor([0, 1]))
    with pytest.raises(DataError, match="normalization"):
        dirichlet_energy(torch.ones(2, 1), torch.tensor([[0], [1]]), normalization="rw")


# ---------------------------------------------------------------------------- MAD


def test_mad_of_identical_rows_is_zero() -> None:
    x = torch.tensor([[1.0, 2.0]]).repeat(6, 1)
    assert mad(x) == pytest.approx(0.0, abs=1e-6)  # float32 unit rows
    assert mad(x, cycle(6)) == 0.0


def test_mad_all_pairs_by_hand() -> None:
    # unit vectors e1, e1, e2: cos = 1 for (0,1), 0 otherwise; mean distance over the 6
    # ordered pairs = (0 + 0 + 1 * 4) / 6.
    x = torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 3.0]])
    assert mad(x) == pytest.approx(4 / 6)


def test_mad_on_pairs_follows_chen_et_al_nonzero_averaging() -> None:
    # Pairs from node 0: to 1 (distance 0) and to 2 (distance 1): D_0 = 1 / 1 nonzero pair.
    # Node 2 -> 0: distance 1. MAD = mean over nodes with nonzero D_i = (1 + 1) / 2.
    x = torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 3.0]])
    pairs = torch.tensor([[0, 0, 2], [1, 2, 0]])
    assert mad(x, pairs) == pytest.approx(1.0)
    # Opposite directions have cosine distance 2.
    assert mad(torch.tensor([[1.0], [-1.0]]), torch.tensor([[0], [1]])) == pytest.approx(2.0)


def test_mad_gap_is_remote_minus_neighbour_mad() -> None:
    x = torch.tensor([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0]])
    near, far = torch.tensor([[0], [1]]), torch.tensor([[0], [2]])
    assert mad_gap(x, near, far) == pytest.approx(mad(x, far) - mad(x, near))
    assert mad_gap(x, near, far) > 0.9


# --------------------------------------------------------------------------- ranks


def test_ranks_of_orthogonal_equal_columns() -> None:
    x = torch.zeros(6, 4)
    x[0, 0] = x[1, 1] = x[2, 2] = 3.0
    assert effective_rank(x) == pytest.approx(3.0)
    assert numerical_rank(x) == pytest.approx(3.0)


def test_ranks_of_a_rank_one_matrix_are_one() -> None:
    x = torch.outer(torch.arange(1.0, 8.0), torch.tensor([1.0, -2.0, 0.5]))
    assert effective_rank(x) == pytest.approx(1.0, abs=1e-3)
    assert numerical_rank(x) == pytest.approx(1.0, abs=1e-6)


def test_numerical_rank_by_hand() -> None:
    x = torch.diag(torch.tensor([2.0, 1.0]))
    assert numerical_rank(x) == pytest.approx((4 + 1) / 4)
    p = torch.tensor([2 / 3, 1 / 3])
    assert effective_rank(x) == pytest.approx(float(torch.exp(-(p * p.log()).sum())))


def test_singular_values_match_torch_svd_for_wide_and_tall() -> None:
    g = torch.Generator().manual_seed(0)
    for shape in ((50, 5), (4, 9)):
        x = torch.randn(*shape, generator=g)
        expected = torch.linalg.svdvals(x.double())
        assert torch.allclose(singular_values(x), expected, atol=1e-4)


def test_ranks_of_zero_matrix_are_zero() -> None:
    assert effective_rank(torch.zeros(5, 3)) == 0.0
    assert numerical_rank(torch.zeros(5, 3)) == 0.0


# ----------------------------------------------------------- dominant subspace distance


def test_distance_zero_on_degree_scaled_constant_per_component() -> None:
    # Two components: path 0-1-2 (degrees 1,2,1) and edge 3-4 (degrees 1,1).
    ei = torch.cat([PATH3, undirected([(3, 4)])], 1)
    d = torch.tensor([1.0, 2.0, 1.0, 1.0, 1.0]) + 1.0
    x = torch.stack([d.sqrt() * torch.tensor([1.0, 1, 1, -3, -3]), d.sqrt() * 2], 1)
    assert dominant_subspace_distance(x, ei) == pytest.approx(0.0, abs=1e-6)


def test_distance_of_a_signal_orthogonal_to_the_subspace_is_one() -> None:
    # On a cycle (regular graph) the subspace is the constant vector; +1/-1 is orthogonal.
    x = torch.tensor([[1.0], [-1.0], [1.0], [-1.0]])
    assert dominant_subspace_distance(x, cycle(4)) == pytest.approx(1.0)


def test_distance_by_hand() -> None:
    # Cycle of 4: u = 1/2 * ones. x = e_0: projection 1/2 * u -> residual^2 = 1 - 1/4.
    x = torch.tensor([[1.0], [0.0], [0.0], [0.0]])
    assert dominant_subspace_distance(x, cycle(4)) == pytest.approx(math.sqrt(0.75))


# --------------------------------------------------------------------- class separation


def test_class_separation_by_hand() -> None:
    # Class 0 at x=0 and x=2 (centroid 1, within 1); class 1 at 10 and 12 (centroid 11).
    x = torch.tensor([[0.0], [2.0], [10.0], [12.0]])
    y = torch.tensor([0, 0, 1, 1])
    assert class_separation(x, y) == pytest.approx(10.0)
    assert class_separation(x, y, per_class=True) == pytest.approx([10.0, 10.0])


def test_class_separation_ignores_unlabelled_and_handles_collapse() -> None:
    x = torch.tensor([[0.0], [2.0], [10.0], [12.0], [100.0]])
    y = torch.tensor([0, 0, 1, 1, -1])
    assert class_separation(x, y) == pytest.approx(10.0)
    assert class_separation(torch.ones(4, 2), torch.tensor([0, 0, 1, 1])) == 0.0
    assert (
        class_separation(torch.tensor([[0.0], [0.0], [1.0]]), torch.tensor([0, 0, 1])) == math.inf
    )


def test_class_separation_rejects_bad_labels() -> None:
    with pytest.raises(DataError, match="one entry per node"):
        class_separation(torch.ones(3, 2), torch.tensor([0, 1]))
    with pytest.raises(DataError, match="at least 2 classes"):
        class_separation(torch.ones(3, 2), torch.tensor([0, 0, 0]))


def test_normalized_energy_is_scale_free_and_matches_the_rayleigh_quotient() -> None:
    from fathom.diagnostics.oversmoothing import normalized_dirichlet_energy

    ei = cycle(4)  # degree 2 everywhere: Laplacian I - (A + I) / 3
    x = torch.tensor([[1.0], [-1.0], [1.0], [-1.0]])
    lap = (
        torch.eye(4)
        - (torch.tensor([[0, 1, 0, 1], [1, 0, 1, 0], [0, 1, 0, 1], [1, 0, 1, 0.0]]) + torch.eye(4))
        / 3
    )
    expected = float(x.T @ lap @ x) / float(x.pow(2).sum())
    assert normalized_dirichlet_energy(x, ei) == pytest.approx(expected)  # = 4/3
    assert normalized_dirichlet_energy(1e-3 * x, ei) == pytest.approx(expected)
    assert normalized_dirichlet_energy(torch.ones(4, 2), ei) == pytest.approx(0.0, abs=1e-7)


# -------------------------------------------------------------------------- row norm


def test_mean_row_norm_by_hand() -> None:
    from fathom.diagnostics.oversmoothing import mean_row_norm

    x = torch.tensor([[3.0, 4.0], [0.0, 0.0], [1.0, 0.0]])
    assert mean_row_norm(x) == pytest.approx((5 + 0 + 1) / 3)
    assert mean_row_norm(torch.tensor([2.0, -2.0])) == pytest.approx(2.0)  # one channel
    assert mean_row_norm(torch.zeros(0, 3)) == 0.0
