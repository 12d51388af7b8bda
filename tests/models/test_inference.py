"""Layer-wise inference (fathom.models.inference, fathom.nn.layerwise): every arch, conv,
skip, norm and memory mode gives the ordinary eval-mode forward pass's outputs with chunks
smaller than the graph (float32: ``atol = rtol = 1e-5``; float64: ``1e-12``), and holds no
more layers, and no larger tensor, than it says."""

from __future__ import annotations

import weakref
from typing import Any

import pytest
import torch
from torch import Tensor, nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch_geometric.nn import GCNConv, GraphConv

from fathom.config import ModelConfig
from fathom.errors import ConfigError
from fathom.models.build import ARCHS, build_model
from fathom.models.decoupled import clear_feature_cache
from fathom.models.deep_gnn import DeepGNN, GCNGroup
from fathom.models.inference import (
    GRAPH_WIDE_NORMS,
    LAYERWISE_ARCHS,
    LAYERWISE_CONVS,
    NODEWISE_NORMS,
    ReceptiveField,
    check_eval_mode,
    check_layerwise,
    layerwise_inference,
    receptive_field,
)
from fathom.nn.adjacency import clear_cache
from fathom.nn.convs import CONVS
from fathom.nn.layerwise import BIPARTITE_CONVS, ChunkedGraph, chunkable, register_local_conv
from fathom.nn.norms import NORMS
from fathom.nn.skips import SKIPS

N, IN, OUT, CHUNK = 37, 6, 3, 8
TOL = {"rtol": 1e-5, "atol": 1e-5}
# GCNII mixes x_0 into every layer (equal widths), the gated conv zero-pads its input: both
# need a linear encoder and head.
LINEAR_ONLY = {"gcn2", "gcn2-star", "gcn2-star-code", "gated"}


def _graph(n: int = N, m: int = 150, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Random directed edges among the first ``n - 2`` nodes (duplicates and self-loops
    included), two isolated nodes, features ``[n, IN]``."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, IN, generator=g)
    edge_index = torch.randint(0, n - 2, (2, m), generator=g)
    loops = torch.arange(0, n - 2, 5).repeat(2, 1)
    edge_index = torch.cat([edge_index, edge_index[:, :10], loops], dim=1)
    return x, edge_index


def _undirected(n: int = N, m: int = 60, seed: int = 1) -> tuple[Tensor, Tensor]:
    x, ei = _graph(n, m, seed)
    ei = ei[:, ei[0] != ei[1]]
    return x, torch.cat([ei, ei.flip(0)], dim=1)


def _model(cfg: ModelConfig, x: Tensor, edge_index: Tensor, seed: int = 0) -> nn.Module:
    """The model of ``cfg`` with running statistics moved away from their initial values
    (two training-mode passes), in eval mode."""
    torch.manual_seed(seed)
    model = build_model(cfg, x.size(1), OUT)
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model(x, edge_index)
    return model.eval()


def _full(model: nn.Module, x: Tensor, edge_index: Tensor) -> Tensor:
    model.eval()
    with torch.no_grad():
        return model(x, edge_index)


def _assert_layerwise(
    model: nn.Module, x: Tensor, edge_index: Tensor, chunk: int = CHUNK, **tol: float
) -> Tensor:
    full = _full(model, x, edge_index)
    out = layerwise_inference(model, x, edge_index, chunk_size=chunk)
    assert out.shape == full.shape
    assert torch.isfinite(full).all()
    torch.testing.assert_close(out, full, **(tol or TOL))
    return out


def _layout(conv: str) -> dict[str, str]:
    if conv in LINEAR_ONLY:
        return {"encoder": "linear", "head": "linear"}
    return {"encoder": "none", "head": "conv"}


# --------------------------------------------------------------------------- equality


def test_the_name_lists_cover_the_registries() -> None:
    assert set(LAYERWISE_CONVS) == set(CONVS.names())
    assert set(NODEWISE_NORMS) | set(GRAPH_WIDE_NORMS) == set(NORMS.names())
    assert not set(NODEWISE_NORMS) & set(GRAPH_WIDE_NORMS)
    assert set(LAYERWISE_ARCHS) == set(ARCHS.names()) - {"dgi", "gae", "vgae"}


@pytest.mark.parametrize("conv", CONVS.names())
def test_every_conv_with_every_skip_and_every_norm(conv: str) -> None:
    """Every skip with batch norm, every norm with a residual skip (pair, mean and graph
    norms included: statistics over the whole layer), chunks of 8 of 37 nodes."""
    x, edge_index = _graph()
    combos = [(skip, "batch") for skip in SKIPS.names()]
    combos += [("res", norm) for norm in NORMS.names() if norm != "batch"]
    failures = []
    for skip, norm in combos:
        cfg = ModelConfig(
            conv=conv, skip=skip, norm=norm, depth=4, hidden=8, heads=2, **_layout(conv)
        )
        try:
            _assert_layerwise(_model(cfg, x, edge_index), x, edge_index)
        except Exception as exc:  # every failing combination reported together
            failures.append(f"{conv}/{skip}/{norm}: {type(exc).__name__}: {exc}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("conv", ["gcn", "sage", "gat", "gcn2", "cheb"])
def test_linear_encoder_and_head_post_norm_pre_activation(conv: str) -> None:
    x, edge_index = _graph()
    for options in (
        {"skip": "res", "norm": "layer", "post_norm": True},
        {"skip": "res+", "norm": "batch"},
        {"skip": "initial", "norm": "pair"},
        {"skip": "none", "norm": "none", "head": "none"},
    ):
        base: dict[str, Any] = {"encoder": "linear", "head": "linear"}
        cfg = ModelConfig(conv=conv, depth=3, hidden=8, heads=2, **{**base, **options})
        _assert_layerwise(_model(cfg, x, edge_index), x, edge_index)


@pytest.mark.parametrize("jk", ["cat", "max", "lstm"])
def test_jumping_knowledge(jk: str) -> None:
    x, edge_index = _graph()
    cfg = ModelConfig(conv="sage", skip="jk", jk=jk, depth=4, hidden=8)
    _assert_layerwise(_model(cfg, x, edge_index), x, edge_index)


@pytest.mark.parametrize("conv", ["gcn", "sage", "gat", "gin0"])
def test_reversible_and_checkpointed(conv: str) -> None:
    """Reversible groups (GCN groups as one module each, other convs as GroupBlocks) run
    their coupling forward, group after group; checkpointed blocks a plain call."""
    x, edge_index = _graph()
    for memory, norm in (("reversible", "batch"), ("reversible", "layer"), ("checkpoint", "batch")):
        cfg = ModelConfig(
            conv=conv,
            depth=5,
            hidden=8,
            heads=2,
            norm=norm,
            skip="res",
            memory=memory,
            encoder="linear",
            head="linear",
            groups=2,
        )
        model = _model(cfg, x, edge_index)
        if memory == "reversible" and conv == "gcn" and norm == "batch":
            assert any(isinstance(m, GCNGroup) for m in model.modules())
        _assert_layerwise(model, x, edge_index)


def test_shared_weights_dropedge_dropnode_and_active_blocks() -> None:
    x, edge_index = _graph()
    cfg = ModelConfig(
        depth=5, hidden=8, skip="res", share_weights=True, drop_edge=0.3, drop_node=0.2
    )
    model = _model(cfg, x, edge_index)
    _assert_layerwise(model, x, edge_index)
    cfg = ModelConfig(depth=5, hidden=8, skip="res", encoder="linear", head="linear")
    model = _model(cfg, x, edge_index)
    assert isinstance(model, DeepGNN)
    model.active_blocks = 2  # greedy layer-wise training in progress
    _assert_layerwise(model, x, edge_index)


@pytest.mark.parametrize("arch", ["appnp", "sgc", "gfnn", "sign", "incep"])
def test_every_other_arch(arch: str) -> None:
    x, edge_index = _graph()
    cfg = ModelConfig(arch=arch, depth=4, hidden=8)
    model = _model(cfg, x, edge_index)
    # precomputed hops (SGC, GfNN, SIGN) are cached per graph: run once from the cache the
    # ordinary pass filled, once propagating them by chunks
    _assert_layerwise(model, x, edge_index)
    full = _full(model, x, edge_index)
    clear_feature_cache()
    clear_cache()
    out = layerwise_inference(model, x, edge_index, chunk_size=CHUNK)
    torch.testing.assert_close(out, full, **TOL)


@pytest.mark.parametrize("chunk", [1, 5, N - 1, N, 10 * N])
def test_any_chunk_size(chunk: int) -> None:
    x, edge_index = _graph()
    for conv in ("gcn", "gat", "cheb"):
        cfg = ModelConfig(conv=conv, depth=3, hidden=8, heads=2, norm="batch", skip="res")
        _assert_layerwise(_model(cfg, x, edge_index), x, edge_index, chunk=chunk)


def test_float64_is_exact_to_rounding() -> None:
    x, edge_index = _graph()
    x = x.double()
    for conv in ("gcn", "gcn2", "cheb", "gat", "sage", "gen"):
        cfg = ModelConfig(
            conv=conv, depth=4, hidden=8, heads=2, norm="pair", skip="res", cheb_k=3,
            **_layout(conv),
        )  # fmt: skip
        torch.manual_seed(0)
        model = build_model(cfg, IN, OUT).double().eval()
        _assert_layerwise(model, x, edge_index, rtol=1e-12, atol=1e-12)


def test_chebyshev_of_higher_order() -> None:
    x, edge_index = _graph()
    for k in (1, 3, 4):
        cfg = ModelConfig(conv="cheb", cheb_k=k, depth=3, hidden=8, norm="batch")
        _assert_layerwise(_model(cfg, x, edge_index), x, edge_index)


def test_gcn_uses_the_whole_graphs_degrees() -> None:
    """A chunk's subgraph has wrong degrees for its boundary nodes: normalising there (as
    PyG's inference on 1-hop subgraphs does) differs; the whole graph's rows do not."""
    x, edge_index = _undirected()
    conv = GCNConv(IN, 4)
    graph = ChunkedGraph(edge_index, N, chunk_size=4)
    with torch.no_grad():
        out = graph.conv(conv, x)
        full = conv(x, edge_index)
    torch.testing.assert_close(out, full, **TOL)
    # the naive version: the conv normalising the chunk's own subgraph
    rowptr, col = graph.in_edges()
    sources = col[int(rowptr[0]) : int(rowptr[4])]
    nodes = torch.unique(torch.cat([torch.arange(4), sources]))
    sub = edge_index[:, torch.isin(edge_index[1], torch.arange(4))]
    local = torch.searchsorted(nodes, sub)
    with torch.no_grad():
        naive = conv(x[nodes], local)[torch.searchsorted(nodes, torch.arange(4))]
    assert not torch.allclose(naive, full[:4], atol=1e-3)


def test_the_mode_is_restored_and_outputs_need_no_grad() -> None:
    x, edge_index = _graph()
    model = build_model(ModelConfig(depth=3, hidden=8, norm="batch"), IN, OUT)
    model.train()
    stats = [b.norm.running_mean.clone() for b in model.blocks]
    out = layerwise_inference(model, x, edge_index, chunk_size=CHUNK)
    assert model.training and not out.requires_grad
    for block, before in zip(model.blocks, stats, strict=True):
        assert torch.equal(block.norm.running_mean, before)  # computed in eval mode


# --------------------------------------------------------------------------- refusals


def test_models_and_convs_it_cannot_run_are_refused() -> None:
    x, edge_index = _graph()
    dgi = build_model(ModelConfig(arch="dgi", hidden=8), IN, OUT)
    with pytest.raises(ValueError, match="DGI does not take a ChunkedGraph"):
        layerwise_inference(dgi, x, edge_index)
    model = build_model(ModelConfig(depth=2, hidden=8), IN, OUT)
    model.blocks[0].conv = GraphConv(IN, 8)
    with pytest.raises(ValueError, match="GraphConv is not known to read only"):
        check_layerwise(model)
    assert chunkable(GCNConv(4, 4, improved=True)) is not None
    register_local_conv(GraphConv)
    try:
        _assert_layerwise(model.eval(), x, edge_index)
    finally:
        from fathom.nn.layerwise import LOCAL_CONVS

        LOCAL_CONVS.remove(GraphConv)


def test_a_block_conv_of_an_unknown_kind_is_refused_before_running() -> None:
    class Mean(nn.Module):
        def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
            return x.mean(dim=0, keepdim=True).expand_as(x)

    model = build_model(ModelConfig(depth=3, hidden=IN, encoder="linear"), IN, OUT)
    model.blocks[1].conv = Mean()
    with pytest.raises(ValueError, match="Mean is not known to read only"):
        layerwise_inference(model, *_graph())


def test_wrapped_models_are_unwrapped() -> None:
    x, edge_index = _graph()
    model = _model(ModelConfig(depth=3, hidden=8, norm="batch", skip="res"), x, edge_index)
    wrapped = nn.DataParallel(model)  # without GPUs a plain wrapper, as DDP is around a rank's
    out = layerwise_inference(wrapped, x, edge_index, chunk_size=CHUNK)
    torch.testing.assert_close(out, _full(model, x, edge_index), **TOL)
    assert receptive_field(wrapped) == receptive_field(model) == ReceptiveField(3, True)


def test_check_eval_mode_refuses_in_one_line() -> None:
    check_eval_mode(ModelConfig(norm="pair"), "layerwise")
    check_eval_mode(ModelConfig(arch="dgi"), "full")
    for cfg, mode, words in (
        (ModelConfig(arch="dgi"), "layerwise", ["train.eval_mode", "'dgi'"]),
        (ModelConfig(arch="gae"), "sampled", ["'gae'"]),
        (ModelConfig(norm="pair"), "sampled", ["model.norm 'pair'", "layerwise"]),
        (ModelConfig(norm="graph"), "sampled", ["model.norm 'graph'"]),
    ):
        with pytest.raises(ConfigError) as info:
            check_eval_mode(cfg, mode)
        message = str(info.value)
        assert "\n" not in message and all(w in message for w in words), message


# --------------------------------------------------------------------------- receptive field


def test_receptive_fields() -> None:
    def field(**options: Any) -> ReceptiveField:
        cfg = ModelConfig(**{"hidden": 8, **options})
        return receptive_field(build_model(cfg, IN, OUT))

    assert field(depth=5) == ReceptiveField(5, True)
    assert field(conv="sage", depth=5) == ReceptiveField(5, False)
    assert field(conv="sage", depth=5).sampled_hops == 5
    assert field(depth=5).sampled_hops == 6
    assert field(conv="cheb", cheb_k=3, depth=4) == ReceptiveField(8, True)
    assert field(conv="mlp", depth=3) == ReceptiveField(0, False)
    assert field(depth=3, head="linear", encoder="linear") == ReceptiveField(3, True)
    reversible = {"memory": "reversible", "encoder": "linear", "groups": 3, "hidden": 9}
    assert field(depth=4, head="linear", **reversible) == ReceptiveField(12, True)  # 4 x 3
    assert field(depth=4, conv="sage", **reversible) == ReceptiveField(10, False)  # 3 x 3 + 1
    assert field(arch="appnp", depth=10) == ReceptiveField(10, True)
    assert field(arch="sign", depth=3) == ReceptiveField(3, True)
    assert field(arch="incep", depth=4) == ReceptiveField(4, True)
    with pytest.raises(ValueError, match="receptive field"):
        receptive_field(nn.Linear(2, 2))


# --------------------------------------------------------------------------- memory


def _live_layers(model: DeepGNN, run: Any) -> list[int]:
    """How many block outputs are alive right after each block ran."""
    outputs: list[weakref.ref[Tensor]] = []
    alive: list[int] = []

    def hook(_module: nn.Module, _args: Any, out: Tensor) -> None:
        outputs.append(weakref.ref(out))
        alive.append(sum(ref() is not None for ref in outputs))

    handles = [block.register_forward_hook(hook) for block in model.blocks]
    try:
        run()
    finally:
        for handle in handles:
            handle.remove()
    return alive


@pytest.mark.parametrize(
    ("skip", "most"), [("res", 2), ("none", 2), ("initial", 2), ("dense", 11), ("jk", 11)]
)
def test_layers_held_at_once(skip: str, most: int) -> None:
    """A 12-layer model (11 blocks and a conv head) holds at most the previous and the new
    block output (plus x_0) with local skips; dense and JK hold every block output, as the
    model reads them all."""
    x, edge_index = _graph()
    cfg = ModelConfig(depth=12, hidden=8, skip=skip, encoder="linear")
    model = _model(cfg, x, edge_index)
    alive = _live_layers(model, lambda: layerwise_inference(model, x, edge_index, chunk_size=8))
    assert len(alive) == 11
    assert max(alive) == most


class _LargestTensor(TorchDispatchMode):
    """The largest floating-point tensor an op returns (elements)."""

    def __init__(self) -> None:
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, Tensor) and t.layout == torch.strided and t.is_floating_point():
                self.largest = max(self.largest, t.numel())
        return out


@pytest.mark.parametrize("conv", ["gat", "sage", "transformer"])
def test_no_tensor_as_large_as_the_graphs_messages(conv: str) -> None:
    """On 400 nodes with 8,000 edges the ordinary pass of a gather/scatter conv builds
    ``[E, C]`` message tensors; layer-wise, no tensor exceeds one ``[N, C]`` layer and a
    chunk's messages are bounded by the chunk's edges."""
    n, hidden = 400, 16
    x, edge_index = _graph(n=n, m=8000, seed=3)
    cfg = ModelConfig(conv=conv, depth=3, hidden=hidden, heads=2, skip="res", norm="batch")
    model = _model(cfg, x, edge_index)
    with _LargestTensor() as full_mode:
        full = _full(model, x, edge_index)
    graph = ChunkedGraph(edge_index, n, chunk_size=16)
    with _LargestTensor() as chunked, torch.no_grad():
        out = model(x, graph)
    torch.testing.assert_close(out, full, **TOL)
    assert full_mode.largest >= edge_index.size(1) * OUT  # the head's messages alone
    width = max(IN, hidden)
    chunk_messages = (graph.max_chunk_edges + graph.max_chunk_nodes) * width  # self-loops
    assert chunked.largest <= max(n * width, chunk_messages)
    assert full_mode.largest >= edge_index.size(1) * width
    assert chunked.largest < full_mode.largest / 10
    assert graph.max_chunk_edges < edge_index.size(1) / 10
    assert graph.max_chunk_nodes < n


@pytest.mark.parametrize("conv", ["gen", "sage", "gin"])
def test_bipartite_convs_run_their_node_wise_part_on_the_chunks_targets(conv: str) -> None:
    """GENConv's MLP (and SAGE's root weight, GIN's MLP) sees each chunk's targets, not the
    chunk's whole 1-hop neighbourhood: over a layer-wise pass the rows reaching it add up to
    the number of nodes, and the outputs match the whole-graph pass."""
    n = 120
    x, edge_index = _graph(n=n, m=900, seed=5)
    cfg = ModelConfig(conv=conv, depth=3, hidden=8, skip="res", norm="batch")
    model = _model(cfg, x, edge_index)
    convs = [m for m in model.modules() if isinstance(m, BIPARTITE_CONVS)]
    assert convs
    node_wise = {
        "gen": lambda c: c.mlp,
        "sage": lambda c: c.lin_r,
        "gin": lambda c: c.nn,
    }[conv]
    rows: list[int] = []
    hooks = [
        node_wise(c).register_forward_pre_hook(lambda _m, args: rows.append(args[0].size(0)))
        for c in convs
    ]
    try:
        graph = ChunkedGraph(edge_index, n, chunk_size=16)
        model.eval()
        with torch.no_grad():
            out = model(x, graph)
    finally:
        for h in hooks:
            h.remove()
    assert sum(rows) == n * len(convs)
    torch.testing.assert_close(out, _full(model, x, edge_index), **TOL)
