"""Dilated k-NN graphs against a brute-force reference: every distance sorted."""

from __future__ import annotations

import pytest
import torch

from fathom.errors import DataError
from fathom.nn.knn import _ranked_by_key, _smallest, dilated_knn_graph


def _brute_force(
    x: torch.Tensor, k: int, batch: torch.Tensor | None, dilation: int, loop: bool
) -> torch.Tensor:
    """Sort every (distance, index) pair of each point's cloud in float64; keep every d-th."""
    n = x.size(0)
    batch = torch.zeros(n, dtype=torch.long) if batch is None else batch
    xd = x.double()
    sources = []
    for i in range(n):
        cands = [
            (float(((xd[i] - xd[j]) ** 2).sum()), j)
            for j in range(n)
            if batch[j] == batch[i] and (loop or j != i)
        ]
        cands.sort()
        sources += [j for _, j in cands[: k * dilation][::dilation]]
    return torch.stack([torch.tensor(sources), torch.arange(n).repeat_interleave(k)])


@pytest.mark.parametrize("dilation", [1, 2, 3])
@pytest.mark.parametrize("loop", [True, False])
def test_matches_brute_force_on_integer_points_full_of_ties(dilation: int, loop: bool) -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 4, (60, 2), generator=g).float()  # many duplicates and equal distances
    batch = torch.tensor([0] * 25 + [1] * 35)
    for block in (1, 7, 1024):
        got = dilated_knn_graph(x, 4, batch, dilation=dilation, loop=loop, block_size=block)
        assert torch.equal(got, _brute_force(x, 4, batch, dilation, loop))


@pytest.mark.parametrize(("k", "dilation"), [(2, 1), (3, 2), (5, 4), (12, 2)])
def test_topk_and_sort_selections_both_match_brute_force(k: int, dilation: int) -> None:
    # k * d below and above a quarter of the 25 candidates: both selection paths
    g = torch.Generator().manual_seed(2)
    x = torch.randint(0, 3, (25, 2), generator=g).float()
    got = dilated_knn_graph(x, k, dilation=dilation, block_size=8)
    assert torch.equal(got, _brute_force(x, k, None, dilation, True))


def test_float64_features_take_the_stable_sort_and_agree() -> None:
    g = torch.Generator().manual_seed(3)
    x = torch.randint(0, 3, (25, 2), generator=g).double()
    got = dilated_knn_graph(x, 12, dilation=2, block_size=8)  # k * d = 24 of 25: ranked rows
    assert torch.equal(got, _brute_force(x, 12, None, 2, True))
    assert torch.equal(got, dilated_knn_graph(x.float(), 12, dilation=2, block_size=8))


def test_key_ranking_equals_a_stable_sort_of_any_float32_row() -> None:
    # negatives (rounding of the expanded distance can give them), -0.0 == +0.0, inf, ties
    row = [0.5, -0.0, 0.0, -1e-7, float("inf"), 0.5, -2.5, 1e30, -1e-7, 3.0]
    dist = torch.tensor([row, row[::-1]], dtype=torch.float32)
    expected = dist.sort(dim=1, stable=True).indices
    torch.testing.assert_close(_ranked_by_key(dist, 10), expected, rtol=0, atol=0)
    torch.testing.assert_close(_ranked_by_key(dist, 4), expected[:, :4], rtol=0, atol=0)


def _sorted_reference(
    x: torch.Tensor, k: int, batch: torch.Tensor, dilation: int, loop: bool
) -> torch.Tensor:
    """Vectorised brute force: a stable sort of every exact (float64) distance per cloud."""
    sources = []
    for c in batch.unique().tolist():
        idx = (batch == c).nonzero().view(-1)
        xc = x[idx].double()
        dist = ((xc[:, None, :] - xc[None, :, :]) ** 2).sum(-1)
        if not loop:
            dist.fill_diagonal_(float("inf"))
        order = dist.sort(dim=1, stable=True).indices[:, : k * dilation : dilation]
        sources.append(idx[order].reshape(-1))
    return torch.stack([torch.cat(sources), torch.arange(x.size(0)).repeat_interleave(k)])


@pytest.mark.parametrize(("k", "dilation"), [(9, 1), (9, 4), (16, 1), (16, 2), (16, 3)])
@pytest.mark.parametrize("loop", [True, False])
def test_deepgcn_settings_match_a_stable_sort_with_many_ties(
    k: int, dilation: int, loop: bool
) -> None:
    # integer coordinates on a small grid: duplicates, and rows tied across the k-th distance
    # (whole-row ranking) beside rows that are not (topk of k + 1 plus the small sort)
    g = torch.Generator().manual_seed(k * 10 + dilation)
    x = torch.randint(0, 7, (400, 3), generator=g).float()
    batch = torch.tensor([0] * 90 + [1] * 250 + [2] * 60)
    expected = _sorted_reference(x, k, batch, dilation, loop)
    for block in (400, 256, 64, 7):  # the whole cloud in one block, and blockwise
        got = dilated_knn_graph(x, k, batch, dilation=dilation, loop=loop, block_size=block)
        assert torch.equal(got, expected)


def test_distinct_distances_take_the_topk_path_and_match_a_stable_sort() -> None:
    # coordinates on a fine integer grid (squared distances exact in float32, few ties): rows
    # take topk of k + 1 and the [B, k] sort (clouds of 1,500 points: 64 (k * d + 1) <= 1,500)
    x = torch.randint(0, 1000, (1800, 3), generator=torch.Generator().manual_seed(4)).float()
    batch = torch.tensor([0] * 300 + [1] * 1500)
    for dilation in (1, 2):
        got = dilated_knn_graph(x, 9, batch, dilation=dilation, block_size=64)
        assert torch.equal(got, _sorted_reference(x, 9, batch, dilation, True))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_smallest_is_a_stable_sorts_first_k_on_rows_tied_inside_and_across_the_cut(
    dtype: torch.dtype,
) -> None:
    inf = float("inf")
    rows = [
        [3.0, 1.0, 2.0, 1.0, 5.0, 4.0, 9.0, 8.0, 7.0, 6.0, 0.5, 2.5],  # tie inside
        [2.0, 1.0, 2.0, 0.0, 2.0, 2.0, 3.0, 2.0, 9.0, 9.0, 9.0, 9.0],  # ties across the cut
        [-1e-7, -2e-7, 0.0, -1e-7, 1.0, inf, 1.0, 1.0, 2.0, 3.0, 4.0, 5.0],  # negatives
        [1.0] * 12,  # all equal
    ]
    dist = torch.tensor(rows, dtype=dtype)
    expected = dist.sort(dim=1, stable=True).indices
    for k in (1, 2, 3):  # up to a quarter of the row: topk of k + 1
        assert torch.equal(_smallest(dist, k), expected[:, :k])
    for k in (4, 7, 12):  # whole-row ranking
        assert torch.equal(_smallest(dist, k), expected[:, :k])


@pytest.mark.parametrize("n", [1300, 1302])  # groups of 4 columns, and a short last one
def test_smallest_matches_a_stable_sort_on_every_path(n: int) -> None:
    g = torch.Generator().manual_seed(n)
    rows = [
        torch.randint(0, 40, (n,), generator=g).float(),  # ties everywhere
        torch.rand(n, generator=g),  # distinct
        torch.randint(0, 3, (n,), generator=g).float() - 1e-7,  # negatives, huge tie groups
    ]
    dist = torch.stack(rows)
    dist[1, -1] = -1.0  # the nearest in the short last group
    expected = dist.sort(dim=1, stable=True).indices
    # topk of k + 1 (64 (k + 1) <= n), the k nearest groups (k <= groups / 6), topk of k + 1
    # beyond (up to n / 4), whole rows (k > n / 4)
    for k in (1, 9, 19, 20, 50, 54, 55, 64, 300, 326, 400):
        assert torch.equal(_smallest(dist, k), expected[:, :k]), k
        assert torch.equal(_smallest(dist.double(), k), expected[:, :k]), k


def test_stochastic_dilation_is_the_seeded_draw_over_the_deterministic_candidates() -> None:
    x = torch.randint(0, 5, (120, 3), generator=torch.Generator().manual_seed(5)).float()
    batch = torch.tensor([0] * 50 + [1] * 70)
    k, d = 4, 3
    candidates = dilated_knn_graph(x, k * d, batch)[0].view(120, k * d)
    for loop in (True, False):
        if not loop:
            candidates = dilated_knn_graph(x, k * d, batch, loop=False)[0].view(120, k * d)
        got = dilated_knn_graph(
            x,
            k,
            batch,
            dilation=d,
            stochastic=True,
            loop=loop,
            generator=torch.Generator().manual_seed(7),
        )
        pick = torch.rand(120, k * d, generator=torch.Generator().manual_seed(7))
        pick = pick.argsort(dim=1)[:, :k].sort(dim=1).values
        assert torch.equal(got[0], candidates.gather(1, pick).reshape(-1))
        assert torch.equal(got[1], torch.arange(120).repeat_interleave(k))


def test_matches_brute_force_on_random_features() -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(80, 5, generator=g)
    got = dilated_knn_graph(x, 6, dilation=2, block_size=16)
    assert torch.equal(got, _brute_force(x, 6, None, 2, True))


def test_grid_neighbours_and_layout() -> None:
    x = torch.tensor([[0.0], [1.0], [3.0], [6.0]])
    edge_index = dilated_knn_graph(x, 2, loop=False)
    # point 2 (at 3): nearest 1 (squared distance 4), then 0 and 3 tie at 9: lower index wins
    assert edge_index[:, 4:6].tolist() == [[1, 0], [2, 2]]
    # point 3 (at 6): 2 (9), then 1 (25)
    assert edge_index[:, 6:8].tolist() == [[2, 1], [3, 3]]
    assert edge_index[1].tolist() == [0, 0, 1, 1, 2, 2, 3, 3]


def test_clouds_never_mix() -> None:
    x = torch.randn(30, 3, generator=torch.Generator().manual_seed(2))
    batch = torch.tensor([0] * 10 + [1] * 20)
    src, dst = dilated_knn_graph(x, 5, batch, dilation=2)
    assert torch.equal(batch[src], batch[dst])


def test_stochastic_dilation_draws_k_of_the_k_times_d_nearest() -> None:
    x = torch.randn(50, 3, generator=torch.Generator().manual_seed(3))
    candidates = dilated_knn_graph(x, 12, dilation=1).view(2, 50, 12)[0]
    a = dilated_knn_graph(
        x, 4, dilation=3, stochastic=True, generator=torch.Generator().manual_seed(0)
    )
    b = dilated_knn_graph(
        x, 4, dilation=3, stochastic=True, generator=torch.Generator().manual_seed(0)
    )
    c = dilated_knn_graph(
        x, 4, dilation=3, stochastic=True, generator=torch.Generator().manual_seed(1)
    )
    assert torch.equal(a, b) and not torch.equal(a, c)
    picked = a[0].view(50, 4)
    for i in range(50):
        assert set(picked[i].tolist()) <= set(candidates[i].tolist())
        assert len(set(picked[i].tolist())) == 4


def test_k_times_dilation_beyond_the_cloud_is_a_clear_error() -> None:
    x = torch.randn(10, 2)
    assert dilated_knn_graph(x, 5, dilation=2).shape == (2, 50)  # k * d == N with the point
    with pytest.raises(DataError, match=r"k \* dilation = 5 \* 2 = 10 exceeds the 9"):
        dilated_knn_graph(x, 5, dilation=2, loop=False)
    with pytest.raises(DataError, match="cloud 1"):
        dilated_knn_graph(x, 3, torch.tensor([0] * 7 + [1] * 3), dilation=2)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"k": 0}, "k >= 1"),
        ({"dilation": 0}, "dilation >= 1"),
        ({"batch": torch.tensor([1, 0, 0, 0, 0, 0])}, "sorted"),
    ],
)
def test_bad_input_is_one_line(kwargs: dict, fragment: str) -> None:
    x = torch.randn(6, 2)
    args = {"k": 2, **kwargs}
    with pytest.raises(DataError, match=fragment):
        dilated_knn_graph(x, **args)
    with pytest.raises(DataError, match="NaN"):
        dilated_knn_graph(torch.full((6, 2), float("nan")), 2)
