r"""Memory that does not grow with depth: gradient checkpointing and reversible blocks.

A deep GNN trained the ordinary way (``plain``) keeps every block's intermediate tensors for
the backward pass, so activation memory grows linearly with depth. Two remedies:

- ``checkpoint`` (:class:`Checkpointed`, Chen et al. 2016, "Training Deep Nets with Sublinear
  Memory Cost"): keep only each block's *inputs* and recompute the block's internals in the
  backward pass; memory still grows with depth, by one ``[N, C]`` tensor per block instead of
  several.
- ``reversible`` (:class:`ReversibleGroups`, RevGNN, Li et al., ICML 2021, `"Training Graph
  Neural Networks with 1000 Layers" <https://arxiv.org/abs/2106.07476>`_): a grouped additive
  coupling is invertible, so a block's input is *reconstructed* from its output in the backward
  pass and no ``[N, C]`` tensor per block is kept; activation memory is independent of depth.
  What still grows with depth is what any deeper model pays (parameters, their gradients and
  optimiser state, module objects) plus about a KB of bookkeeping per block (its autograd node
  and one seed per group).

Both recompute forward passes in the backward pass, which raises two questions. Random ops
(dropout) must draw the same masks again: a checkpointed call records and restores the
random-number state before it; in training a reversible block runs each of its functions from
a fresh seed drawn from the global stream (:func:`seed_group_rng`) and replays that seed.
BatchNorm's running statistics must not move twice: both restore the buffers of the recomputed
modules after every recomputation, so running statistics are updated exactly once per training
step, by the forward pass, as without recomputation.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

__all__ = [
    "MEMORY_MODES",
    "Checkpointed",
    "ReversibleGroups",
    "checkpoint_call",
    "seed_group_rng",
]

MEMORY_MODES = ("plain", "checkpoint", "reversible")
"""How block activations are kept for the backward pass (``model.memory``): stored
(``plain``), recomputed from each block's input (``checkpoint``, :class:`Checkpointed`), or
recomputed from each block's output (``reversible``, :class:`ReversibleGroups`)."""


@contextmanager
def _frozen_buffers(module: nn.Module) -> Iterator[None]:
    """Run a recomputation of ``module`` without leaving a trace in its buffers (BatchNorm's
    running mean, variance and batch count), which the original forward pass already updated."""
    buffers = [b for b in module.buffers() if b is not None]
    saved = [b.clone() for b in buffers]
    try:
        yield
    finally:
        # .data: leave the version counters alone, as autograd saved some buffers (BatchNorm
        # saves its running statistics, though its training-mode backward does not read them)
        for b, s in zip(buffers, saved, strict=True):
            b.data.copy_(s)


def checkpoint_call(module: nn.Module, *args: Any) -> Any:
    """``module(*args)``, checkpointed when ``module`` is training and grad is enabled.

    Uses :func:`torch.utils.checkpoint.checkpoint` (``use_reentrant=False``,
    ``preserve_rng_state=True``: dropout draws the same masks when recomputed); the
    recomputation in the backward pass leaves ``module``'s buffers (BatchNorm running
    statistics) as the forward pass left them. In eval mode or under ``torch.no_grad()`` this is
    a plain call.
    """
    if not (module.training and torch.is_grad_enabled()):
        return module(*args)
    calls = 0

    def run(*inputs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            return module(*inputs)
        with _frozen_buffers(module):
            return module(*inputs)

    return checkpoint(run, *args, use_reentrant=False, preserve_rng_state=True)


class Checkpointed(nn.Module):
    """Gradient checkpointing of a module (Chen et al. 2016, `"Training Deep Nets with
    Sublinear Memory Cost" <https://arxiv.org/abs/1604.06174>`_): in training with grad
    enabled, the wrapped module's intermediate tensors are not kept; the backward pass
    recomputes them from the saved inputs (see :func:`checkpoint_call`).

    Gradients are identical to the unwrapped module's (dropout masks are replayed, BatchNorm
    running statistics are updated once per step); the cost is one extra forward pass of the
    module per backward pass.

    Args:
        module: the module to wrap, called as ``module(*args)``.

    Shapes:
        as ``module``.
    """

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, *args: Any) -> Any:
        return checkpoint_call(self.module, *args)

    def reset_parameters(self) -> None:
        if hasattr(self.module, "reset_parameters"):
            self.module.reset_parameters()


# --------------------------------------------------------------------------- reversible


def seed_group_rng(device: torch.device) -> int:
    """Draw a seed from torch's global random stream, seed the generator of ``device`` (and
    the CPU's) with it and return it: what a reversible block does before each of its
    functions in training, so that the backward pass can replay the function's random draws
    from 8 bytes instead of a saved generator state (about 5 KB on CPU, 10 MB per 1000
    two-group blocks). The global stream stays a function of torch's seed."""
    seed = int(torch.randint(0, 2**62, (), dtype=torch.int64))
    _replay_seed(seed, device)
    return seed


def _replay_seed(seed: int, device: torch.device) -> None:
    torch.default_generator.manual_seed(seed)
    if device.type == "cuda":
        with torch.cuda.device(device):
            torch.cuda.manual_seed(seed)


def _sum(tensors: Sequence[Tensor]) -> Tensor:
    """Left-to-right sum, so the inverse adds the groups in the forward pass's order."""
    total = tensors[0]
    for t in tensors[1:]:
        total = total + t
    return total


def _owns_storage(x: Tensor) -> bool:
    """Whether ``x`` is the only view of its whole storage (so releasing it is safe)."""
    return (
        x.is_contiguous()
        and x.storage_offset() == 0
        and x.untyped_storage().nbytes() == x.numel() * x.element_size()
    )


class _Coupling(torch.autograd.Function):
    """The reversible coupling of a :class:`ReversibleGroups` module as one autograd node that
    keeps its output but not its input (the backward pass reconstructs the input).

    Chaining: when the input is itself the output of another coupling (its ``grad_fn`` is
    this node type), the input's storage is released after the forward pass; the backward
    pass of this node writes the reconstructed values back into that storage before the
    producing node's backward pass needs them, and the producer releases them again when it
    is done. So at any time only the couplings at the ends of a chain hold activations.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, module: ReversibleGroups, num_args: int, x: Tensor, *rest: Any
    ) -> Tensor:
        args = rest[:num_args]
        ctx.module, ctx.args, ctx.num_params = module, args, len(rest) - num_args
        device = x.device
        with torch.no_grad():
            out, seeds = module._couple(x, args)
        ctx.seeds = seeds
        # The output's consumer may release it (see class docstring); set by that consumer.
        ctx.output_released = False
        ctx.input_released = False
        producer = x.grad_fn
        if isinstance(producer, _Coupling._backward_cls) and _owns_storage(x):  # type: ignore[attr-defined]
            x.untyped_storage().resize_(0)
            producer.output_released = True
            ctx.input_released = True
        ctx.device = device
        ctx.save_for_backward(x, out)
        return out

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Any, ...]:
        x, out = ctx.saved_tensors
        module: ReversibleGroups = ctx.module
        device = ctx.device
        params = [p for p in module.parameters() if p.requires_grad]
        if len(params) != ctx.num_params:
            raise RuntimeError(
                "ReversibleGroups: the set of parameters requiring grad changed between "
                "the forward and backward pass"
            )
        with (
            torch.random.fork_rng(devices=[device] if device.type == "cuda" else []),
            _frozen_buffers(module),
        ):
            x_rec, grad_x, grads = module._reverse(
                out, grad_out, ctx.args, ctx.seeds, params, ctx.needs_input_grad[2]
            )
        if ctx.input_released:
            # .data: write without bumping the version counter that the producer's saved
            # copy of this tensor checks
            x.data.untyped_storage().resize_(x.numel() * x.element_size())
            x.data.copy_(x_rec)
        del x_rec
        if ctx.output_released:
            # the consumer's backward pass, which needed it, has run
            out.data.untyped_storage().resize_(0)
        return (None, None, grad_x, *([None] * len(ctx.args)), *grads)


class ReversibleGroups(nn.Module):
    r"""Grouped reversible residual block of RevGNN (Li et al., ICML 2021, `"Training Graph
    Neural Networks with 1000 Layers" <https://arxiv.org/abs/2106.07476>`_).

    The input's channels are split into :math:`G` = ``len(fns)`` equal groups
    :math:`x_1, \dots, x_G` and coupled additively:

    .. math::
        y_0 = \sum_{i=2}^{G} x_i, \qquad
        y_i = x_i + F_i(y_{i-1}, \ldots), \quad i = 1, \ldots, G,

    output :math:`[y_1 \,\|\, \dots \,\|\, y_G]`. The map is invertible whatever the
    :math:`F_i`: :math:`x_i = y_i - F_i(y_{i-1})` for :math:`i = G, \ldots, 2`, then
    :math:`x_1 = y_1 - F_1(\sum_{i \ge 2} x_i)`. In training (grad enabled and something to
    differentiate) the block's input is therefore not kept for the backward pass: the backward
    pass reconstructs it from the output while it back-propagates, evaluating each
    :math:`F_i` once more with autograd (RevNet's backward, Gomez et al. 2017). A chain of
    such blocks stores activations only at its ends, so activation memory does not grow with
    depth; the price is one extra forward pass of every :math:`F_i` per backward pass.

    When the input is the output of another :class:`ReversibleGroups` call, that tensor's
    storage is released after this block's forward pass (and restored in the backward pass):
    do not use a reversible block's output elsewhere when it feeds another reversible block
    (read it before, or use :meth:`coupling` for an ordinary computation).

    In training each :math:`F_i` runs from its own seed, drawn from torch's global random
    stream (:func:`seed_group_rng`), both here and in :meth:`coupling`; recomputation replays
    that seed (dropout draws the same masks; 8 bytes per :math:`F_i` instead of a 5 KB
    generator state) and restores the :math:`F_i`'s buffers afterwards (BatchNorm running
    statistics are updated once per step, by the forward pass). Under ``torch.no_grad()``
    the coupling is computed ordinarily.

    The same idea as PyG's :class:`~torch_geometric.nn.GroupAddRev`, written anew because
    that one (PyG 2.8) draws new dropout masks when it recomputes (wrong gradients), updates
    BatchNorm statistics three times per step, and releases its input's storage even when
    another autograd node still needs it (an input produced by ReLU: the backward pass fails).

    Args:
        fns: the :math:`F_i`, each called as ``fn(x_group, *args)`` and mapping
            ``[N, C / G]`` to ``[N, C / G]``; at least two.
        preserve_rng_state: seed each function in training and replay the seed in the
            backward pass (set ``False`` only when the ``fns`` draw no random numbers).

    Shapes:
        x: ``[num_nodes, channels]`` (``channels`` divisible by ``len(fns)``), ``*args``:
        non-differentiable extras such as ``edge_index: [2, num_edges]`` ->
        ``[num_nodes, channels]``.
    """

    def __init__(self, fns: Sequence[nn.Module], *, preserve_rng_state: bool = True) -> None:
        super().__init__()
        if len(fns) < 2:
            raise ValueError(f"ReversibleGroups needs at least 2 groups, got {len(fns)}")
        self.fns = nn.ModuleList(fns)
        self.preserve_rng_state = preserve_rng_state

    @property
    def groups(self) -> int:
        """Number of channel groups :math:`G`."""
        return len(self.fns)

    def _split(self, x: Tensor) -> tuple[Tensor, ...]:
        if x.size(-1) % self.groups:
            raise ValueError(
                f"ReversibleGroups: {x.size(-1)} channels do not split into {self.groups} groups"
            )
        return x.chunk(self.groups, dim=-1)

    def _couple(self, x: Tensor, args: tuple[Any, ...]) -> tuple[Tensor, list[int]]:
        """The forward coupling, and the seed each ``fn`` ran from (none in evaluation)."""
        xs = self._split(x)
        seeding = self.preserve_rng_state and self.training
        seeds: list[int] = []
        y = _sum(xs[1:])
        ys = []
        for fn, x_i in zip(self.fns, xs, strict=True):
            if seeding:
                seeds.append(seed_group_rng(x.device))
            y = x_i + fn(y, *args)
            ys.append(y)
        return torch.cat(ys, dim=-1), seeds  # [num_nodes, channels]

    def _reverse(
        self,
        out: Tensor,
        grad_out: Tensor,
        args: tuple[Any, ...],
        seeds: list[int],
        params: list[nn.Parameter],
        need_grad_x: bool,
    ) -> tuple[Tensor, Tensor | None, list[Tensor | None]]:
        """Reconstruct the input from ``out`` and back-propagate ``grad_out`` through the
        coupling, evaluating each ``fn`` once (RevNet's backward, Gomez et al. 2017): for
        ``i = G … 2``, :math:`f = F_i(y_{i-1})` gives :math:`x_i = y_i - f` and, by
        autograd, :math:`F_i`'s contribution to the gradients of :math:`y_{i-1}` and the
        parameters; then the same for :math:`F_1` at :math:`\\sum_{i \\ge 2} x_i`. Only one
        ``fn``'s graph exists at a time.

        Returns the input, its gradient (``None`` unless ``need_grad_x``) and the gradients
        of ``params``.
        """
        index = {id(p): k for k, p in enumerate(params)}
        grads: list[Tensor | None] = [None] * len(params)

        def backprop(fn: nn.Module, f: Tensor, inp: Tensor | None, grad: Tensor) -> Tensor | None:
            own = [p for p in fn.parameters() if p.requires_grad]
            inputs = ([inp] if inp is not None else []) + own
            if not inputs:
                return None
            got = torch.autograd.grad(f, inputs, grad, allow_unused=True)
            for p, g in zip(own, got[len(inputs) - len(own) :], strict=True):
                k = index[id(p)]
                if g is not None:
                    grads[k] = g if grads[k] is None else grads[k] + g
            return got[0] if inp is not None else None

        ys = [t.detach() for t in self._split(out)]
        gys = list(grad_out.chunk(self.groups, dim=-1))
        xs: list[Tensor] = list(ys)
        with torch.enable_grad():
            for i in range(self.groups - 1, 0, -1):
                if seeds:
                    _replay_seed(seeds[i], out.device)
                y_in = ys[i - 1].detach().requires_grad_()
                f = self.fns[i](y_in, *args)
                xs[i] = ys[i] - f.detach()
                g_in = backprop(self.fns[i], f, y_in, gys[i])
                del f
                if g_in is not None:
                    gys[i - 1] = gys[i - 1] + g_in
            if seeds:
                _replay_seed(seeds[0], out.device)
            s = _sum(xs[1:]).detach().requires_grad_(need_grad_x)
            f = self.fns[0](s, *args)
            xs[0] = ys[0] - f.detach()
            g_s = backprop(self.fns[0], f, s if need_grad_x else None, gys[0])
            del f
        grad_x = None
        if need_grad_x:
            # x_1 reaches y_1 directly; x_i (i >= 2) directly and through the sum into F_1
            parts = [gys[0]] + [g if g_s is None else g + g_s for g in gys[1:]]
            grad_x = torch.cat(parts, dim=-1)  # [num_nodes, channels]
        return torch.cat(xs, dim=-1), grad_x, grads

    def coupling(self, x: Tensor, *args: Any) -> Tensor:
        """The coupling computed ordinarily (autograd keeps every intermediate tensor).

        Shapes:
            as :meth:`forward`.
        """
        return self._couple(x, args)[0]

    def inverse(self, y: Tensor, *args: Any) -> Tensor:
        """The input ``x`` with ``forward(x, *args) == y`` (in eval mode, or with the ``fns``
        deterministic).

        Shapes:
            as :meth:`forward`.
        """
        ys = self._split(y)
        xs: list[Tensor] = [ys[0]] * self.groups
        for i in range(self.groups - 1, -1, -1):
            y_in = ys[i - 1] if i > 0 else _sum(xs[1:])
            xs[i] = ys[i] - self.fns[i](y_in, *args)
        return torch.cat(xs, dim=-1)  # [num_nodes, channels]

    def forward(self, x: Tensor, *args: Any) -> Tensor:
        if x.numel() and x.untyped_storage().nbytes() == 0:
            raise RuntimeError(
                "ReversibleGroups: the input's storage was released by another reversible "
                "block that consumed it; feed a reversible block's output to one block only"
            )
        params = [p for p in self.parameters() if p.requires_grad]
        if not torch.is_grad_enabled() or not (x.requires_grad or params):
            return self.coupling(x, *args)
        for a in args:
            if isinstance(a, Tensor) and a.requires_grad:
                raise ValueError(
                    "ReversibleGroups: extra arguments are not differentiated; got one that "
                    "requires grad"
                )
        return _Coupling.apply(self, len(args), x, *args, *params)

    def reset_parameters(self) -> None:
        for fn in self.fns:
            if hasattr(fn, "reset_parameters"):
                fn.reset_parameters()

    def extra_repr(self) -> str:
        return f"groups={self.groups}"
