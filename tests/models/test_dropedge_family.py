"""The DropEdge paper's GCN family as fathom builds it (fathom.models.build from the
depth-<model>-<dataset> presets), against a hand-written model of the authors' code.

``Ref*`` below restate DropEdge/DropEdge ``src/models.py`` (``GCNModel``) and
``src/layers.py`` (``GraphConvolutionBS`` and the ``mutigcn`` / ``resgcn`` / ``densegcn`` /
``inceptiongcn`` blocks) in a few lines each, on a dense propagation matrix: an input GCN
layer, hidden blocks of ``nbaselayer`` layers, an output GCN layer; each layer
``act(BN(P X W + X W_self + b))`` with the self term under ``withloop`` and BN under
``withbn`` (the output layer too, without activation); dropout after the input layer and
after every hidden layer. Weights are copied into fathom's model and the outputs compared
(dropout off; BN in training mode so its batch statistics count).
"""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import Tensor, nn

from fathom.config import apply_overrides
from fathom.models.build import build_model
from fathom.models.deep_gnn import DeepGNN
from fathom.models.inception import IncepGCN
from fathom.models.presets import load_preset
from fathom.nn.skips import InactiveSkipWarning, NoSkip, Residual

N, F_IN, HID, C = 12, 6, 5, 3


def _graph() -> Tensor:
    torch.manual_seed(3)
    ei = torch.randint(0, N, (2, 40))
    ei = ei[:, ei[0] != ei[1]]
    return torch.cat([ei, ei.flip(0)], 1).unique(dim=1)


def _matrix(edge_index: Tensor, kind: str) -> Tensor:
    a = torch.zeros(N, N)
    a[edge_index[1], edge_index[0]] = 1.0
    a = a + torch.eye(N)
    deg = a.sum(1)
    if kind == "rw":  # AugRWalk
        return a / deg[:, None]
    d = deg.pow(-0.5)  # AugNormAdj
    return d[:, None] * a * d[None, :]


class RefLayer(nn.Module):
    """GraphConvolutionBS: weight [in, out], self_weight, bias, optional BN, activation."""

    def __init__(self, fin: int, fout: int, act: bool, withbn: bool, withloop: bool) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(fin, fout) * 0.3)
        self.self_weight = nn.Parameter(torch.randn(fin, fout) * 0.3) if withloop else None
        self.bias = nn.Parameter(torch.randn(fout) * 0.1)
        self.bn = nn.BatchNorm1d(fout) if withbn else None
        self.act = act

    def forward(self, x: Tensor, adj: Tensor) -> Tensor:
        out = adj @ (x @ self.weight)
        if self.self_weight is not None:
            out = out + x @ self.self_weight
        out = out + self.bias
        if self.bn is not None:
            out = self.bn(out)
        return torch.relu(out) if self.act else out


class RefModel(nn.Module):
    """GCNModel: ingc, ``nhidlayer`` blocks of ``nbaselayer`` layers of ``baseblock``, outgc."""

    def __init__(
        self, baseblock: str, nhidlayer: int, nbaselayer: int, withbn: bool, withloop: bool
    ) -> None:
        super().__init__()
        self.baseblock = baseblock

        def layer(fin: int, fout: int, act: bool = True) -> RefLayer:
            return RefLayer(fin, fout, act, withbn, withloop)

        self.ingc = layer(F_IN, HID)
        self.blocks = nn.ModuleList()
        width = HID
        for _ in range(nhidlayer):
            if baseblock == "inceptiongcn":  # branch j: j + 1 layers on the block's input
                block = nn.ModuleList(
                    nn.ModuleList(layer(HID, HID) for _ in range(j + 1)) for j in range(nbaselayer)
                )
                width = HID + HID * nbaselayer
            else:
                block = nn.ModuleList(layer(HID, HID) for _ in range(nbaselayer))
                width = HID + HID * nbaselayer if baseblock == "densegcn" else HID
            self.blocks.append(block)
        self.outgc = layer(width, C, act=False)

    def forward(self, x: Tensor, adj: Tensor) -> Tensor:
        x = self.ingc(x, adj)  # (dropout here and after every hidden layer: off)
        for block in self.blocks:
            u = x
            if self.baseblock == "inceptiongcn":
                outs = [u]
                for branch in block:
                    b = u
                    for gc in branch:
                        b = gc(b, adj)
                    outs.append(b)
                x = torch.cat(outs, 1)
                continue
            seen = []
            for gc in block:
                seen.append(x)
                x = gc(x, adj)
            if self.baseblock == "resgcn":
                x = x + u
            elif self.baseblock == "densegcn":  # the last output first, then what it saw
                x = torch.cat([x, *seen], 1)
        return self.outgc(x, adj)


def _copy_layer(ref: RefLayer, conv: nn.Module, norm: nn.Module | None, rows=None) -> None:
    def reorder(w: Tensor) -> Tensor:
        return w if rows is None else w[rows]

    with torch.no_grad():
        conv.lin.weight.copy_(reorder(ref.weight).t())  # fathom's Linear holds W^T: [out, in]
        if ref.self_weight is not None:
            conv.lin_root.weight.copy_(reorder(ref.self_weight).t())
        else:
            assert getattr(conv, "lin_root", None) is None
        conv.bias.copy_(ref.bias)
    assert (ref.bn is None) == (norm is None or isinstance(norm, nn.Identity))


def _model(preset: str, depth: int, **overrides: object) -> nn.Module:
    cfg = load_preset(preset)
    values = {
        "model.depth": depth,
        "model.hidden": HID,
        "model.dropout": 0.0,
        "model.drop_edge": 0.0,
    }
    values.update({f"model.{k}": v for k, v in overrides.items()})
    cfg = apply_overrides(cfg, values)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InactiveSkipWarning)
        return build_model(cfg.model, F_IN, C)


def _shapes(model: nn.Module) -> list[tuple[int, ...]]:
    return sorted(tuple(p.shape) for p in model.parameters())


def _ref_shapes(ref: RefModel) -> list[tuple[int, ...]]:
    # DropEdge's [in, out] weights are fathom's [out, in]
    return sorted(tuple(p.t().shape) if p.dim() == 2 else tuple(p.shape) for p in ref.parameters())


def _compare(ref: RefModel, ours: nn.Module, adj: Tensor, edge_index: Tensor) -> None:
    assert _shapes(ours) == _ref_shapes(ref)
    ref.train()  # BN on batch statistics; dropout is off in both
    ours.train()
    x = torch.randn(N, F_IN)
    torch.testing.assert_close(ours(x, edge_index), ref(x, adj), rtol=1e-5, atol=1e-5)


def _copy_chain(ref: RefModel, ours: DeepGNN) -> list[RefLayer]:
    layers = [ref.ingc, *(gc for block in ref.blocks for gc in block)]
    assert len(layers) == len(ours.blocks)
    for gc, block in zip(layers, ours.blocks, strict=True):
        _copy_layer(gc, block.conv, block.norm)
    return layers


@pytest.mark.parametrize(
    ("preset", "kind", "withloop"),
    [("depth-gcn-cora", "sym", False), ("depth-gcn-dropedge-pubmed", "rw", True)],
)
@pytest.mark.parametrize("withbn", [False, True])
def test_mutigcn_is_the_papers_gcn(preset: str, kind: str, withloop: bool, withbn: bool) -> None:
    torch.manual_seed(0)
    depth = 6  # ingc + 4 hidden layers in one mutigcn block + outgc
    ref = RefModel("mutigcn", 1, depth - 2, withbn, withloop)
    ours = _model(preset, depth, **({"norm": "batch", "head_norm": True} if withbn else {}))
    assert isinstance(ours, DeepGNN)
    assert all(isinstance(b.skip, NoSkip) for b in ours.blocks)
    _copy_chain(ref, ours)
    _copy_layer(ref.outgc, ours.head, ours.head_norm)
    edge_index = _graph()
    _compare(ref, ours, _matrix(edge_index, kind), edge_index)


@pytest.mark.parametrize(
    ("nhidlayer", "nbaselayer", "skip_every"), [(4, 1, 1), (2, 2, 2), (1, 3, 3), (1, 5, 0)]
)
def test_resgcn_blocks_of_nbaselayer_layers(
    nhidlayer: int, nbaselayer: int, skip_every: int
) -> None:
    """``model.skip_every k`` is ``--nbaseblocklayer k``; 0 is the scripts' one block
    (``--nhiddenlayer 1 --nbaseblocklayer depth - 2``)."""
    torch.manual_seed(1)
    depth = nhidlayer * nbaselayer + 2
    ref = RefModel("resgcn", nhidlayer, nbaselayer, withbn=False, withloop=True)
    ours = _model("depth-resgcn-pubmed", depth, skip_every=skip_every)
    assert isinstance(ours, DeepGNN)
    residual = [
        i for i, b in enumerate(ours.blocks, 1) if isinstance(b.skip, Residual) and b.skip.active
    ]
    # a shortcut closes every group of nbaselayer layers after the input layer
    assert residual == [1 + nbaselayer * g for g in range(1, nhidlayer + 1)]
    _copy_chain(ref, ours)
    _copy_layer(ref.outgc, ours.head, None)
    edge_index = _graph()
    _compare(ref, ours, _matrix(edge_index, "rw"), edge_index)
    # a shortcut older than the last state: the model keeps its history
    assert ours._history_is_local() == (nbaselayer == 1)


@pytest.mark.parametrize(
    ("preset", "kind"), [("depth-jknet-cora", "rw"), ("depth-jknet-citeseer", "sym")]
)
def test_densegcn_is_jumping_knowledge_over_every_layer(preset: str, kind: str) -> None:
    torch.manual_seed(2)
    depth, m = 5, 3  # ingc + 3 hidden layers + outgc
    withloop = load_preset(preset).model.root_weight
    ref = RefModel("densegcn", 1, m, withbn=True, withloop=withloop)
    ours = _model(preset, depth, norm="batch", head_norm=True)
    assert isinstance(ours, DeepGNN) and ours.jk is not None
    _copy_chain(ref, ours)
    # DropEdge concatenates [x_m, x_0, …, x_{m-1}], fathom [x_0, …, x_m]: reorder its rows
    chunks = [torch.arange(i * HID, (i + 1) * HID) for i in range(m + 1)]
    rows = torch.cat([*chunks[1:], chunks[0]])
    _copy_layer(ref.outgc, ours.head, ours.head_norm, rows=rows)
    edge_index = _graph()
    _compare(ref, ours, _matrix(edge_index, kind), edge_index)


@pytest.mark.parametrize("withbn", [False, True])
def test_inceptiongcn_is_the_papers_incepgcn(withbn: bool) -> None:
    torch.manual_seed(4)
    depth = 5
    ref = RefModel("inceptiongcn", 1, depth - 2, withbn=withbn, withloop=True)
    extra = {"norm": "batch", "head_norm": True} if withbn else {}
    ours = _model("depth-incepgcn-dropedge-cora", depth, root_weight=True, **extra)
    assert isinstance(ours, IncepGCN)
    _copy_layer(ref.ingc, ours.input_conv, ours.input_norm)
    for ref_branch, branch, norms in zip(
        ref.blocks[0], ours.branches, ours.branch_norms, strict=True
    ):
        for gc, conv, norm in zip(ref_branch, branch, norms, strict=True):
            _copy_layer(gc, conv, norm)
    _copy_layer(ref.outgc, ours.output_conv, ours.output_norm)
    edge_index = _graph()
    _compare(ref, ours, _matrix(edge_index, "rw"), edge_index)


def test_presets_build_the_papers_parameter_shapes_at_published_depth() -> None:
    # JKNet + DropEdge on CiteSeer as published: 16 layers, hidden 128, --withloop
    cfg = load_preset("depth-jknet-dropedge-citeseer")
    ref = RefModel("densegcn", 1, 14, withbn=False, withloop=True)
    ref.ingc = RefLayer(3703, 128, True, False, True)
    ref.blocks = nn.ModuleList(
        [nn.ModuleList(RefLayer(128, 128, True, False, True) for _ in range(14))]
    )
    ref.outgc = RefLayer(128 * 15, 6, False, False, True)
    ours = build_model(cfg.model, 3703, 6)
    assert _shapes(ours) == _ref_shapes(ref)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in ref.parameters())
