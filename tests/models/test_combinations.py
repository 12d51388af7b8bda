"""Every conv x skip x norm builds, runs forward and backward; every arch trains a step.

Each conv runs the full skip x norm grid in its natural layout (no encoder and a conv head,
the Kipf & Welling layout where widths change at the first and last conv; a linear encoder
and head for the convs that need equal widths), plus a cross-section (every skip with one
norm, every norm with one skip) in the other layout. Building a PyG conv costs milliseconds
(signature inspection), so the grid is looped inside one test per conv and kept tiny.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fathom.config import ModelConfig
from fathom.errors import ConfigError
from fathom.models.build import ARCHS, build_model
from fathom.models.deep_gnn import DeepGNN
from fathom.nn.convs import CONVS
from fathom.nn.norms import NORMS
from fathom.nn.skips import SKIPS

N, IN, OUT = 10, 5, 3

# Convs that need a linear encoder and head: GCNII mixes x_0 into every layer (equal widths,
# no final layer), the gated conv zero-pads its input (in <= out, so no hidden -> classes head).
LINEAR_ONLY = {"gcn2", "gcn2-star", "gcn2-star-code", "gated"}


def _graph() -> tuple[Tensor, Tensor, Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(N, IN, generator=g)
    i = torch.arange(N)
    ring = torch.stack([i, (i + 1) % N])
    chords = torch.stack([i[::2], (i[::2] + 3) % N])
    edge_index = torch.cat([ring, ring.flip(0), chords, chords.flip(0)], dim=1)
    y = torch.arange(N) % OUT
    return x, edge_index, y


def _combos(conv: str) -> list[tuple[str, str, str, str]]:
    """``(encoder, head, skip, norm)`` to run for ``conv``."""
    grid = list(itertools.product(SKIPS.names(), NORMS.names()))
    if conv in LINEAR_ONLY:
        return [("linear", "linear", skip, norm) for skip, norm in grid]
    cross = [(skip, "batch") for skip in SKIPS.names()]
    cross += [("res", norm) for norm in NORMS.names() if norm != "batch"]
    return [("none", "conv", skip, norm) for skip, norm in grid] + [
        ("linear", "linear", skip, norm) for skip, norm in cross
    ]


def _conv_modules(model: DeepGNN) -> list[nn.Module]:
    convs = [b.conv for b in model.blocks]
    return [*convs, model.head] if model.head_is_conv else convs


def _check_forward_backward(model: nn.Module, x: Tensor, edge_index: Tensor, y: Tensor) -> None:
    model.train()
    out = model(x, edge_index)
    assert out.shape == (N, OUT)
    loss = F.cross_entropy(out, y)
    assert math.isfinite(loss.item())
    loss.backward()
    for name, p in model.named_parameters():
        if p.grad is not None:
            assert torch.isfinite(p.grad).all(), name


def test_registries_are_covered() -> None:
    # The grid below is read from the registries; make sure it is not trivially small.
    assert len(CONVS) >= 12 and len(SKIPS) >= 6 and len(NORMS) >= 10
    assert set(CONVS.names()) >= LINEAR_ONLY


@pytest.mark.parametrize("conv", CONVS.names())
def test_every_skip_and_norm_with_conv(conv: str) -> None:
    x, edge_index, y = _graph()
    failures = []
    combos = _combos(conv)
    assert {(skip, norm) for _, _, skip, norm in combos} == set(
        itertools.product(SKIPS.names(), NORMS.names())
    )
    for encoder, head, skip, norm in combos:
        combo = f"{conv}/{skip}/{norm}/{encoder}-{head}"
        torch.manual_seed(0)
        cfg = ModelConfig(
            conv=conv,
            skip=skip,
            norm=norm,
            depth=3,
            hidden=8,
            heads=2,
            dropout=0.1,
            attn_dropout=0.1,
            encoder=encoder,
            head=head,
        )
        try:
            model = build_model(cfg, IN, OUT)
            assert isinstance(model, DeepGNN)
            assert model.num_layers == 3
            _check_forward_backward(model, x, edge_index, y)
            conv_grads = [
                p.grad
                for module in _conv_modules(model)
                for p in module.parameters()
                if p.grad is not None
            ]
            assert any(bool((g != 0).any()) for g in conv_grads), "no conv gradient"
        except Exception as exc:  # collect every failing combination, report them together
            failures.append(f"{combo}: {type(exc).__name__}: {exc}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("conv", sorted(LINEAR_ONLY))
def test_linear_only_convs_reject_the_conv_head_layout(conv: str) -> None:
    with pytest.raises(ConfigError, match=r"model\.encoder=linear and model\.head=linear"):
        build_model(ModelConfig(conv=conv, depth=3, hidden=8), IN, OUT)


def test_eval_mode_with_every_norm() -> None:
    # Norms with running statistics (batch, group) switch behaviour in eval mode.
    x, edge_index, _ = _graph()
    for norm in NORMS.names():
        torch.manual_seed(0)
        model = build_model(ModelConfig(norm=norm, depth=3, hidden=8, skip="res"), IN, OUT)
        model(x, edge_index)
        model.eval()
        with torch.no_grad():
            out = model(x, edge_index)
        assert out.shape == (N, OUT) and torch.isfinite(out).all(), norm


# --------------------------------------------------------------------------- every arch

ARCH_DEPTH = {"incep": 4}


@pytest.mark.parametrize("arch", ARCHS.names())
def test_every_arch_builds_and_trains_one_step(arch: str) -> None:
    x, edge_index, y = _graph()
    torch.manual_seed(0)
    cfg = ModelConfig(arch=arch, depth=ARCH_DEPTH.get(arch, 3), hidden=8, heads=2, dropout=0.1)
    model = build_model(cfg, IN, OUT)
    params = [p for p in model.parameters() if p.requires_grad]
    assert params
    before = [p.detach().clone() for p in params]
    optimizer = torch.optim.Adam(params, lr=0.01)
    model.train()
    if arch == "dgi":
        z = model(x, edge_index)  # DGI's forward returns embeddings
        assert z.shape == (N, 8)
        loss = model.loss(x, edge_index)
    else:
        out = model(x, edge_index)
        assert out.shape == (N, OUT)
        loss = F.cross_entropy(out, y)
    assert loss.dim() == 0 and math.isfinite(loss.item())
    loss.backward()
    grads = [p.grad for p in params if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    optimizer.step()
    assert any(not torch.equal(b, p) for b, p in zip(before, params, strict=True))
    model.eval()
    with torch.no_grad():
        out = model(x, edge_index)
    assert out.shape == ((N, 8) if arch == "dgi" else (N, OUT))
    assert torch.isfinite(out).all()
