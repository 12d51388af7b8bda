"""Tests of fathom.data.validate."""

from __future__ import annotations

import time

import pytest
import torch
from torch_geometric.data import Data

from fathom.data.validate import GraphReport, validate_graph
from fathom.errors import DataError


def _graph(**overrides) -> Data:
    """A valid 6-node undirected path 0-1-2-3-4-5 with 3 features and 2 classes."""
    src = torch.tensor([0, 1, 2, 3, 4])
    fields = dict(
        x=torch.arange(18, dtype=torch.float32).view(6, 3),
        edge_index=torch.stack([torch.cat([src, src + 1]), torch.cat([src + 1, src])]),
        y=torch.tensor([0, 0, 0, 1, 1, 1]),
        train_mask=torch.tensor([True, False, False, True, False, False]),
        val_mask=torch.tensor([False, True, False, False, True, False]),
        test_mask=torch.tensor([False, False, True, False, False, True]),
    )
    fields.update(overrides)
    return Data(**{k: v for k, v in fields.items() if v is not None})


def _error(data: Data, **kwargs) -> str:
    with pytest.raises(DataError) as info:
        validate_graph(data, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_valid_graph_report() -> None:
    report = validate_graph(_graph())
    assert report == GraphReport(
        num_nodes=6,
        num_edges=10,
        num_features=3,
        num_classes=2,
        self_loops=0,
        duplicate_edges=0,
        isolated_nodes=0,
        is_undirected=True,
        num_train=2,
        num_val=2,
        num_test=2,
    )


def test_report_counts_self_loops_duplicates_isolated_and_direction() -> None:
    # 6 nodes: 0<->1 (with (0, 1) stored twice), self-loops on 1 and 4, one-way 2->3, and
    # nodes 4 (self-loop only) and 5 without any edge to another node.
    edge_index = torch.tensor([[0, 1, 0, 1, 2, 4], [1, 0, 1, 1, 3, 4]])
    data = _graph(edge_index=edge_index)
    report = validate_graph(data)
    assert report.num_edges == 6
    assert report.self_loops == 2
    assert report.duplicate_edges == 1
    assert report.isolated_nodes == 2
    assert report.is_undirected is False


def test_report_duplicates_do_not_make_graph_directed() -> None:
    edge_index = torch.tensor([[0, 0, 1, 2, 3], [1, 1, 0, 3, 2]])
    report = validate_graph(_graph(edge_index=edge_index))
    assert report.is_undirected is True
    assert report.duplicate_edges == 1
    assert report.isolated_nodes == 2  # nodes 4 and 5


def test_report_summary_and_dict() -> None:
    report = validate_graph(_graph())
    assert report.summary() == (
        "6 nodes, 10 edges (undirected), 3 features, 2 classes; 0 self-loops, "
        "0 duplicate edges, 0 isolated nodes; train/val/test 2/2/2"
    )
    as_dict = report.to_dict()
    assert as_dict["num_edges"] == 10
    assert as_dict["is_undirected"] is True
    assert set(as_dict) == set(GraphReport.__dataclass_fields__)


def test_optional_labels_and_masks() -> None:
    data = _graph(y=None, train_mask=None, val_mask=None, test_mask=None)
    report = validate_graph(data, require_labels=False, require_masks=False)
    assert report.num_classes is None
    assert (report.num_train, report.num_val, report.num_test) == (None, None, None)
    assert "no labels" in report.summary()
    assert "train/val/test -/-/-" in report.summary()


def test_optional_fields_are_still_checked_when_present() -> None:
    data = _graph(y=torch.tensor([0.0] * 6))
    assert "y must have an integer dtype" in _error(data, require_labels=False)
    data = _graph(val_mask=torch.zeros(6, dtype=torch.bool))
    assert "val_mask is empty" in _error(data, require_masks=False)


def test_empty_edge_index_is_valid() -> None:
    report = validate_graph(_graph(edge_index=torch.empty(2, 0, dtype=torch.long)))
    assert report.num_edges == 0
    assert report.isolated_nodes == 6
    assert report.is_undirected is True


def test_missing_x() -> None:
    assert _error(_graph(x=None)) == "data.x is missing"


def test_missing_edge_index() -> None:
    assert _error(_graph(edge_index=None)) == "data.edge_index is missing"


def test_x_not_tensor() -> None:
    data = _graph()
    data.x = [[1.0]] * 6
    assert "data.x must be a torch.Tensor, got list" in _error(data)


def test_x_not_2d() -> None:
    message = _error(_graph(x=torch.zeros(6)))
    assert "x must be 2-D" in message
    assert "(6,)" in message


def test_x_not_floating() -> None:
    message = _error(_graph(x=torch.zeros(6, 3, dtype=torch.long)))
    assert "x must have a floating-point dtype" in message
    assert "torch.int64" in message


def test_num_nodes_inconsistent_with_x() -> None:
    data = _graph()
    data.num_nodes = 7
    message = _error(data)
    assert "num_nodes is 7 but x has 6 rows" in message


def test_x_non_finite() -> None:
    x = torch.zeros(6, 3)
    x[4, 0] = float("nan")
    x[1, 2] = float("inf")
    x[4, 1] = float("-inf")
    message = _error(_graph(x=x))
    assert message == "x has 3 non-finite values (NaN/Inf) in 2 rows: first rows [1, 4]"


def test_edge_index_not_integer() -> None:
    message = _error(_graph(edge_index=torch.zeros(2, 3)))
    assert "edge_index must have an integer dtype" in message
    assert "torch.float32" in message


def test_edge_index_wrong_shape() -> None:
    message = _error(_graph(edge_index=torch.zeros(3, 4, dtype=torch.long)))
    assert "edge_index must have shape [2, num_edges]" in message
    assert "(3, 4)" in message


def test_edge_index_out_of_range() -> None:
    edge_index = torch.tensor([[0, 6, 1, -1], [1, 0, 250, 2]])
    message = _error(_graph(edge_index=edge_index))
    assert message == (
        "edge_index has 3 entries out of range [0, 6): first offending values [6, 250, -1]"
    )


def test_y_missing() -> None:
    message = _error(_graph(y=None))
    assert "data.y is missing" in message


def test_y_wrong_length() -> None:
    message = _error(_graph(y=torch.tensor([0, 1, 0])))
    assert "y must have shape [num_nodes] = [6]" in message
    assert "(3,)" in message


def test_y_not_integer() -> None:
    message = _error(_graph(y=torch.tensor([0.0, 1.0, 0.0, 1.0, 0.0, 1.0])))
    assert "y must have an integer dtype, got torch.float32" in message


def test_y_negative() -> None:
    message = _error(_graph(y=torch.tensor([0, -1, 1, 1, -2, 0])))
    assert message == "y has 2 negative labels: first at nodes [1, 4] with values [-1, -2]"


def test_mask_missing() -> None:
    message = _error(_graph(val_mask=None))
    assert "data.val_mask is missing" in message


def test_mask_not_bool() -> None:
    message = _error(_graph(train_mask=torch.tensor([1, 0, 0, 1, 0, 0])))
    assert "train_mask must have dtype torch.bool, got torch.int64" in message


def test_mask_wrong_length() -> None:
    message = _error(_graph(test_mask=torch.tensor([True, False])))
    assert "test_mask must have shape [num_nodes] = [6]" in message
    assert "(2,)" in message


@pytest.mark.parametrize("name", ["train_mask", "val_mask", "test_mask"])
def test_mask_empty(name: str) -> None:
    message = _error(_graph(**{name: torch.zeros(6, dtype=torch.bool)}))
    assert message == f"{name} is empty (selects 0 of 6 nodes)"


def test_masks_overlap() -> None:
    test_mask = torch.tensor([True, False, True, True, False, True])
    message = _error(_graph(test_mask=test_mask))
    assert message == "train_mask and test_mask overlap on 2 nodes: first [0, 3]"


def test_large_graph_is_fast() -> None:
    gen = torch.Generator().manual_seed(0)
    n, e = 10_000, 100_000
    data = Data(
        x=torch.randn(n, 8, generator=gen),
        edge_index=torch.randint(0, n, (2, e), generator=gen),
        y=torch.randint(0, 3, (n,), generator=gen),
    )
    # One intra-op thread: on a busy small host torch's thread pool, not the algorithm,
    # dominates the timing.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        validate_graph(data, require_masks=False)  # warm-up
        start = time.perf_counter()
        report = validate_graph(data, require_masks=False)
        elapsed = time.perf_counter() - start
    finally:
        torch.set_num_threads(threads)
    # About 10 ms when vectorised; a per-edge Python loop takes seconds.
    assert elapsed < 0.5
    assert report.num_edges == e
    assert report.is_undirected is False


def test_more_classes_than_nodes_is_refused_before_any_head_is_sized() -> None:
    y = torch.zeros(6, dtype=torch.long)
    y[2] = 10**9
    message = _error(_graph(y=y))
    assert "label 1000000000 (at node 2)" in message and "only 6 nodes" in message
    # as many classes as nodes is still fine
    validate_graph(_graph(y=torch.arange(6)))


def test_negative_label_is_refused() -> None:
    assert "negative labels" in _error(_graph(y=torch.tensor([0, -1, 1, 0, 1, 0])))


def test_zero_feature_columns_are_refused() -> None:
    assert "zero feature columns" in _error(_graph(x=torch.zeros(6, 0)))
