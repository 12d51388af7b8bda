"""Smoke test of ``benchmarks/deep_speed.py`` in its tiny mode (no datasets needed), on the
CPU and (``gpu`` marker) on CUDA."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from dataclasses import replace
from pathlib import Path
from types import ModuleType

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.data import Batch
from torch_geometric.loader import NodeLoader

from fathom import DataNotFoundError, NodeClassification, fit
from fathom.config import apply_overrides
from fathom.experiments.run import train_one
from fathom.loaders import NeighborSampler
from fathom.nn.knn import dilated_knn_graph

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "deep_speed.py"
TINY = ["--tiny", "--threads", "1", "--epochs", "2", "--warmup", "1", "--mem-epochs", "1"]
NEW = ("gcnii64-pubmed", "resplus16", "sage-sampled", "res28-clouds", "dgi", "gae", "gae-sampled")
CPU = torch.device("cpu")


@pytest.fixture
def deep_speed(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The script as module ``deep_speed``: its memory-measuring child processes import it
    by that name, from its folder."""
    spec = importlib.util.spec_from_file_location("deep_speed", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "deep_speed", module)
    monkeypatch.syspath_prepend(str(SCRIPT.parent))
    spec.loader.exec_module(module)
    return module


def test_tiny_run_writes_every_row_with_positive_figures(
    deep_speed: ModuleType, tmp_path: Path
) -> None:
    json_path, md_path = tmp_path / "out" / "speed.json", tmp_path / "speed.md"
    argv = [*TINY, "--device", "cpu"]
    code = deep_speed.main([*argv, "--json", str(json_path), "--md", str(md_path)])

    assert code == 0
    result = json.loads(json_path.read_text())
    assert result["settings"]["tiny"] is True
    assert result["settings"]["device"] == "cpu"
    assert result["settings"]["res16_nodes"] == 1000
    assert result["environment"]["gpu"] is None
    assert [row["workload"] for row in result["rows"]] == list(deep_speed.WORKLOADS)
    for row in result["rows"]:
        assert row["num_params"] > 0
        assert row["twin"] and (row["epochs"], row["warmup"]) == (2, 1)
        for impl in ("fathom", "pyg"):
            figures = row[impl]
            assert len(figures["epoch_ms"]) == 2
            assert figures["ms_per_epoch"] > 0
            # the tiny GCN's and GCNII's activations (tens to hundreds of KiB; fathom keeps
            # only the states its skips read) can fit in heap pages the process already
            # holds, so their peak growth may be 0; the residual GCN's cannot
            assert (
                figures["peak_mib"] > 0 if row["workload"] == "res16" else figures["peak_mib"] >= 0
            )
        assert row["time_ratio"] == pytest.approx(
            row["fathom"]["ms_per_epoch"] / row["pyg"]["ms_per_epoch"]
        )
        if row["pyg"]["peak_mib"] > 0:
            assert row["mem_ratio"] == pytest.approx(
                row["fathom"]["peak_mib"] / row["pyg"]["peak_mib"]
            )
        assert row["time_ratio"] > 0 and math.isfinite(row["time_ratio"])
    markdown = md_path.read_text()
    assert "Tiny smoke run" in markdown
    assert "device: cpu" in markdown
    assert all(f"| {name} |" in markdown for name in deep_speed.WORKLOADS)
    assert "PyG twin: examples/ogbn_products_sage.py" in markdown


def test_missing_dataset_is_one_line_and_exit_2(
    deep_speed: ModuleType, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def not_found(workload: object) -> None:
        raise DataNotFoundError("dataset 'cora' not found: looked in FATHOM_DATA /nowhere")

    monkeypatch.setattr(deep_speed, "load_data", not_found)

    assert deep_speed.main(["--workloads", "gcn2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("deep_speed.py: error: workload gcn2 needs data 'cora'")
    assert "not found" in err[-1]


def test_unknown_workload_is_a_usage_error(deep_speed: ModuleType) -> None:
    with pytest.raises(SystemExit) as exc:
        deep_speed.main(["--workloads", "gcn2,nope"])
    assert exc.value.code == 2


@pytest.mark.parametrize("device", ["cuda", "cuda:0", "tpu"])
def test_unavailable_device_is_one_line_and_exit_2(
    deep_speed: ModuleType,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    device: str,
) -> None:
    # no CUDA, whatever machine runs the test; the device is refused before any data loads
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)

    def no_data(workload: object) -> None:
        raise AssertionError("data loaded before the device was checked")

    monkeypatch.setattr(deep_speed, "load_data", no_data)

    assert deep_speed.main([*TINY, "--device", device]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("deep_speed.py: error: device (--device)")
    assert repr(device) in err


@pytest.mark.parametrize("workload", ["gcn2", "res16"])
def test_fathom_epoch_is_fits_epoch(deep_speed: ModuleType, workload: str) -> None:
    """The benchmark times fathom's training loop: its epochs give fit's losses, bit for bit
    (same seed, same optimiser, same dropout draws)."""
    spec = deep_speed.make_workloads(tiny=True, nodes=200)[workload]
    data = deep_speed.load_data(spec)
    _, epoch = deep_speed.build_impl(spec, "fathom", data, torch.device("cpu"))
    benchmark = [epoch()[0] for _ in range(3)]

    torch.manual_seed(deep_speed.SEED)
    fresh = deep_speed.build_model(spec.model, data.num_features, int(data.y.max()) + 1)
    task = NodeClassification(spec.train.label_smoothing)
    result = fit(fresh, task, data, replace(spec.train, epochs=3, patience=0))

    assert [record["loss"] for record in result.history] == benchmark


def _first_loss(out: object) -> float:
    """The training loss of an epoch's return value (a twin's ``train()`` may return the
    loss with an approximate accuracy, as the products example's does)."""
    first = out[0]  # type: ignore[index]
    return float(first[0] if isinstance(first, tuple) else first)


@pytest.mark.parametrize("name", NEW)
def test_new_workload_builds_both_sides_with_equal_shapes_and_trains(
    deep_speed: ModuleType, name: str
) -> None:
    spec = deep_speed.make_workloads(tiny=True, nodes=300)[name]
    data = deep_speed.load_data(spec)
    built = {impl: deep_speed.build_impl(spec, impl, data, CPU) for impl in deep_speed.IMPLS}

    fathom_model, pyg_model = built["fathom"][0], built["pyg"][0]
    assert deep_speed._shapes(fathom_model) == deep_speed._shapes(pyg_model)
    assert sum(p.numel() for p in fathom_model.parameters()) == sum(
        p.numel() for p in pyg_model.parameters()
    )
    for model, epoch in built.values():
        before = [p.detach().clone() for p in model.parameters()]
        loss = _first_loss(epoch())
        assert math.isfinite(loss)
        # the epoch took at least one optimiser step
        assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True))


def _copy_by_shape(src: nn.Module, dst: nn.Module) -> None:
    """Copy ``src``'s parameters into ``dst``'s, matched by shape and, among equal shapes, by
    order of registration (the twins register their layers in fathom's order)."""
    ordered = [sorted(m.parameters(), key=lambda p: tuple(p.shape)) for m in (src, dst)]
    with torch.no_grad():
        for a, b in zip(*ordered, strict=True):
            b.copy_(a)


@pytest.mark.parametrize("name", ["gcnii64-pubmed", "sage-sampled", "res28-clouds", "dgi", "gae"])
def test_twin_computes_fathoms_function_with_its_weights(deep_speed: ModuleType, name: str) -> None:
    """In eval mode each twin's model with fathom's weights gives fathom's outputs (resplus16
    differs by design: the example's first and last layers and its GENConv MLP's LayerNorm;
    its parameter shapes are checked above)."""
    spec = deep_speed.make_workloads(tiny=True, nodes=300)[name]
    data = deep_speed.load_data(spec)
    ours, _ = deep_speed.build_impl(spec, "fathom", data, CPU)
    twin, _ = deep_speed.build_impl(spec, "pyg", data, CPU)
    _copy_by_shape(ours, twin)
    ours.eval()
    twin.eval()
    with torch.no_grad():
        if name == "res28-clouds":  # float64: no near-tie may order neighbours differently
            ours.double()
            twin.double()
            batch = Batch.from_data_list(data.train)
            batch.x, batch.pos = batch.x.double(), batch.pos.double()
            expected = F.log_softmax(ours(batch.x, batch.pos, batch.batch), dim=-1)
            got = twin(batch)
        elif name == "gcnii64-pubmed":
            expected = F.log_softmax(ours(data.x, data.edge_index), dim=-1)
            got = twin(data.x, deep_speed.pyg_adj_t(data))
        elif name == "sage-sampled":
            expected = F.log_softmax(ours(data.x, data.edge_index), dim=-1)
            got = twin(data.x, data.edge_index)
        elif name == "dgi":
            expected, got = ours(data.x, data.edge_index), twin.encoder(data.x, data.edge_index)
        else:
            expected = ours.encode(data.x, data.edge_index)
            got = twin.encode(data.x, data.edge_index)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_sage_twin_inference_is_fathoms_layerwise_evaluation(deep_speed: ModuleType) -> None:
    """The twin's layer-wise inference (reddit.py's, over the NodeLoader) equals a full
    forward pass: both sides' evaluations compute the same outputs."""
    spec = deep_speed.make_workloads(tiny=True, nodes=300)["sage-sampled"]
    data = deep_speed.load_data(spec)
    twin, _ = deep_speed.build_impl(spec, "pyg", data, CPU)
    twin.eval()
    loader = NodeLoader(data, node_sampler=NeighborSampler(data, [-1]), batch_size=64)
    with torch.no_grad():
        full = twin(data.x, data.edge_index)
        layerwise = twin.inference(data.x, loader, CPU).log_softmax(dim=-1)
    torch.testing.assert_close(layerwise, full, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "name", ["gcnii64-pubmed", "resplus16", "res28-clouds", "dgi", "gae", "gae-sampled"]
)
def test_task_epoch_is_the_run_pipelines_epoch(deep_speed: ModuleType, name: str) -> None:
    """fathom's side of a task-API workload trains exactly as ``fathom train`` (train_one and
    fit) does: the same losses, bit for bit."""
    spec = deep_speed.make_workloads(tiny=True, nodes=300)[name]
    data = deep_speed.load_data(spec)
    _, epoch = deep_speed.build_impl(spec, "fathom", data, CPU)
    benchmark = [epoch()[0] for _ in range(2)]

    cfg = apply_overrides(
        spec.experiment, {"train.epochs": 2, "train.patience": 0, "device": "cpu"}
    )
    result = train_one(cfg, data)

    assert [record["loss"] for record in result.history] == benchmark


def test_sampled_epoch_stops_after_its_batches(deep_speed: ModuleType) -> None:
    batches = deep_speed.FirstBatches(range(10), 3)
    assert list(batches) == [0, 1, 2]
    assert list(batches) == [0, 1, 2]  # every pass a fresh one

    spec = deep_speed.make_workloads(tiny=True, nodes=300, sage_batches=1)["sage-sampled"]
    assert spec.batches == 1
    data = deep_speed.load_data(spec)
    seeds: list[int] = []
    original = NodeClassification.loss

    def counting(self: NodeClassification, model: nn.Module, batch: object) -> torch.Tensor:
        seeds.append(int(batch.batch_size))  # type: ignore[attr-defined]
        return original(self, model, batch)

    _, epoch = deep_speed.build_impl(spec, "fathom", data, CPU)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(NodeClassification, "loss", counting)
        epoch()
    assert seeds == [spec.train.batch_size]


def test_dense_knn_is_fathoms_dilated_knn(deep_speed: ModuleType) -> None:
    """The twin's cdist + topk graph is the graph fathom's exact k-NN builds."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2 * 40, 5, generator=generator, dtype=torch.float64)
    batch = torch.arange(2).repeat_interleave(40)
    for dilation in (1, 3):
        ours = dilated_knn_graph(x, 4, batch, dilation=dilation)
        assert torch.equal(deep_speed.dense_dilated_knn(x, 2, 4, dilation), ours)


def test_epochs_default_per_workload(deep_speed: ModuleType) -> None:
    workloads = deep_speed.make_workloads(tiny=False, nodes=1000)
    args = deep_speed.parse_args([])
    assert args.epochs is None and args.warmup is None
    for name in ("gcn2", "gcnii64", "res16"):  # unchanged
        assert workloads[name].experiment is None
        assert deep_speed._epochs(args, workloads[name]) == (50, 5)
    assert deep_speed._epochs(args, workloads["gcnii64-pubmed"]) == (5, 1)
    assert deep_speed._epochs(args, workloads["sage-sampled"]) == (3, 1)
    assert workloads["gcnii64-pubmed"].model.depth == 64
    assert workloads["sage-sampled"].batches == args.sage_batches
    tiny = deep_speed.parse_args(["--tiny"])
    assert deep_speed._epochs(tiny, workloads["res28-clouds"]) == (3, 1)
    forced = deep_speed.parse_args(["--epochs", "7", "--warmup", "0"])
    assert deep_speed._epochs(forced, workloads["resplus16"]) == (7, 0)


@pytest.mark.gpu
def test_tiny_run_on_cuda_records_the_gpu_and_finite_ratios(
    deep_speed: ModuleType, tmp_path: Path
) -> None:
    json_path, md_path = tmp_path / "speed.json", tmp_path / "speed.md"
    argv = [*TINY, "--device", "cuda", "--json", str(json_path), "--md", str(md_path)]

    assert deep_speed.main(argv) == 0
    result = json.loads(json_path.read_text())
    env = result["environment"]
    assert result["settings"]["device"].startswith("cuda:")
    assert env["device"] == result["settings"]["device"]
    assert env["gpu"] == torch.cuda.get_device_name(torch.device(env["device"]))
    assert "synchronize" in result["settings"]["timing"]
    assert "max_memory_allocated" in result["settings"]["memory"]
    assert [row["workload"] for row in result["rows"]] == list(deep_speed.WORKLOADS)
    for row in result["rows"]:
        for impl in ("fathom", "pyg"):
            figures = row[impl]
            assert figures["ms_per_epoch"] > 0
            # every training forward allocates activations on the GPU
            assert figures["peak_mib"] > 0
            assert figures["peak_allocated_mib"] >= figures["peak_mib"]
        for key in ("time_ratio", "mem_ratio"):
            assert row[key] is not None and math.isfinite(row[key]) and row[key] > 0
    assert env["gpu"] in md_path.read_text()


def test_trimming_twin_computes_the_untrimmed_seed_rows(deep_speed: ModuleType) -> None:
    """sage-sampled-trim's twin (PyG's trim_to_layer before every layer) gives the seeds the
    outputs of the example's untrimmed forward pass."""
    from fathom.loaders import neighbor_loader

    spec = deep_speed.make_workloads(tiny=True, nodes=300)["sage-sampled-trim"]
    data = deep_speed.load_data(spec)
    twin, _ = deep_speed.build_impl(spec, "pyg", data, CPU)
    twin.eval()
    batch = next(iter(neighbor_loader(data, [15, 10, 5], batch_size=32, seed=0)))
    with torch.no_grad():
        full = twin(batch.x, batch.edge_index)[:32]
        hops = (batch.num_sampled_nodes, batch.num_sampled_edges)
        trimmed = twin(batch.x, batch.edge_index, *hops)[:32]
    torch.testing.assert_close(trimmed, full, rtol=1e-5, atol=1e-6)
