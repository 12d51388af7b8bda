"""Rendering a diagnosis: the per-layer columns are the metric registry's."""

from __future__ import annotations

import torch

from fathom.diagnostics.layer_metrics import ProbeGraph, measure_one
from fathom.diagnostics.metrics import metric_records
from fathom.report.diagnose import LAYER_COLUMNS


def test_layer_columns_are_the_registry_and_what_the_probe_produces() -> None:
    assert tuple((m.name, m.column) for m in metric_records()) == LAYER_COLUMNS
    ring = torch.stack([torch.arange(12), (torch.arange(12) + 1) % 12])
    ring = torch.cat([ring, ring.flip(0)], 1)
    graph = ProbeGraph(ring, 12, y=torch.arange(12) % 2)
    produced = measure_one(
        torch.randn(12, 4, generator=torch.Generator().manual_seed(0)), graph, "all"
    )
    assert set(produced) == {name for name, _ in LAYER_COLUMNS}
