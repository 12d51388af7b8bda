"""Layer probes: record what every message-passing layer of any ``nn.Module`` outputs.

:class:`LayerProbe` attaches forward hooks to the layers of a model — fathom's
:class:`~fathom.nn.block.GNNBlock` s and conv head, the convs of a PyG ``BasicGNN``
(``torch_geometric.nn.models.GCN`` …), or any stack of PyG ``MessagePassing`` modules — without
changing the model. During one forward pass it keeps, of each layer's output, only the rows
the over-smoothing metrics read (a fixed sample on large graphs, see
:class:`~fathom.diagnostics.layer_metrics.ProbeGraph`) and drops the tensor; at the end of the
pass (or when the buffer passes ``buffer_mb``) it computes the metrics of all buffered layers
at once (:func:`~fathom.diagnostics.layer_metrics.measure_layers`). Memory is bounded whatever
the depth; ``keep=True`` keeps every full state as well.

Example::

    with LayerProbe(model, metrics=("dirichlet_energy", "effective_rank")) as probe:
        model(data.x, data.edge_index)
    for record in probe.records:        # one per layer, layer 0 = the model's input
        print(record["layer"], record["dirichlet_energy"])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch_geometric.nn import MessagePassing

from fathom.diagnostics.layer_metrics import ProbeGraph, hop_pairs, measure_layers
from fathom.diagnostics.metrics import DEFAULT_METRICS, METRICS, resolve_metrics
from fathom.errors import ConfigError, DataError

__all__ = [
    "DEFAULT_METRICS",
    "METRICS",
    "LayerProbe",
    "ProbeGraph",
    "find_layers",
    "hop_pairs",
    "probe_layers",
    "resolve_metrics",
]


# ------------------------------------------------------------------------------- layers


def find_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The message-passing layers of ``model``, outermost first, in registration order.

    A layer is a fathom :class:`~fathom.nn.block.GNNBlock` (conv + norm + activation + skip),
    a reversible block (:class:`~fathom.nn.reversible.ReversibleGroups`: its groups are parts
    of one layer, each seeing a slice of the channels) or a PyG ``MessagePassing`` module that
    is not inside one (a conv head, the convs of a ``BasicGNN``, a user's own stack). The
    probe records them in call order, so a module called twice (shared weights) is recorded
    twice.
    """
    from fathom.nn.block import GNNBlock
    from fathom.nn.reversible import ReversibleGroups

    found: list[tuple[str, nn.Module]] = []
    inside: list[str] = []
    for name, module in model.named_modules():
        if any(name.startswith(prefix + ".") for prefix in inside):
            continue
        if isinstance(module, GNNBlock | ReversibleGroups | MessagePassing):
            found.append((name or type(module).__name__, module))
            inside.append(name)
    return found


def _first_tensor(value: Any) -> Tensor | None:
    if isinstance(value, Tensor):
        return value
    if isinstance(value, tuple | list):
        for item in value:
            t = _first_tensor(item)
            if t is not None:
                return t
    return None


def _find_edge_index(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Tensor | None:
    if isinstance(kwargs.get("edge_index"), Tensor):
        return kwargs["edge_index"]
    for a in list(args) + list(kwargs.values()):
        if isinstance(a, Tensor) and a.dim() == 2 and a.size(0) == 2 and not a.is_floating_point():
            return a
    return None


class LayerProbe:
    """Context manager recording per-layer metrics (and optionally states) of ``model``.

    Args:
        model: any ``nn.Module``; it is not modified (hooks are removed on exit).
        metrics: names from :data:`METRICS`, ``"all"``, or ``()`` to only keep states.
        edge_index: the graph the metrics use; default: the first ``[2, E]`` integer tensor
            passed to ``model``'s forward (the training graph, before any DropEdge).
        y: node labels, for ``class_separation``.
        layers: modules to record (default :func:`find_layers`).
        include_input: record the model's input features as layer 0.
        keep: also keep every layer's detached output in :attr:`states`.
        max_nodes, max_edges, max_pairs, seed: sampling of large graphs (see :class:`ProbeGraph`;
            ``None``: measure every node / edge / pair).
        buffer_mb: size of the buffer of layer samples per width; when full its layers are
            measured (as at the end of every forward pass).

    After a forward pass, :attr:`records` holds one dict per recorded layer:
    ``{"forward": f, "layer": l, "name": module name, "channels": C, <metric>: value, …}``;
    :meth:`last` returns the records of the latest forward pass only.
    """

    def __init__(
        self,
        model: nn.Module,
        metrics: str | Sequence[str] = DEFAULT_METRICS,
        *,
        edge_index: Tensor | None = None,
        y: Tensor | None = None,
        layers: Sequence[nn.Module] | None = None,
        include_input: bool = True,
        keep: bool = False,
        max_nodes: int | None = 512,
        max_edges: int | None = 2048,
        max_pairs: int | None = 512,
        seed: int = 0,
        buffer_mb: float = 64.0,
    ) -> None:
        self.model = model
        self.metrics = resolve_metrics(metrics)
        self.edge_index, self.y = edge_index, y
        named = dict((id(m), n) for n, m in model.named_modules())
        if layers is None:
            self.layers = find_layers(model)
        else:
            self.layers = [(named.get(id(m), type(m).__name__), m) for m in layers]
        if not self.layers:
            raise ConfigError(
                f"found no message-passing layers to probe in {type(model).__name__} (models "
                "that propagate without layers, such as SGC and APPNP, have none); in Python, "
                "name the modules with layers=[...]"
            )
        self.include_input, self.keep = include_input, keep
        self.sampling = {
            "max_nodes": max_nodes,
            "max_edges": max_edges,
            "max_pairs": max_pairs,
            "seed": seed,
        }
        self.records: list[dict[str, Any]] = []
        self.states: list[Tensor] = []
        self._graphs: dict[tuple[int, int], ProbeGraph] = {}
        self._handles: list[Any] = []
        self._forward = -1
        self._layer = 0
        self._graph_edges: Tensor | None = None
        self._input_cache: dict[tuple[Any, ...], dict[str, float]] = {}
        self._pending: dict[tuple[Any, ...], list[Any]] = {}
        self._buffers: dict[tuple[Any, ...], Tensor] = {}
        self.buffer_bytes = int(buffer_mb * 2**20)

    # -- hooks
    def __enter__(self) -> LayerProbe:
        self._handles.append(
            self.model.register_forward_pre_hook(self._on_model_start, with_kwargs=True)
        )
        for name, module in self.layers:
            self._handles.append(module.register_forward_hook(self._make_hook(name)))
        # after the layers' hooks, so it also runs last when the model itself is a layer
        self._handles.append(self.model.register_forward_hook(self._on_model_end))
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()

    def remove(self) -> None:
        """Remove every hook (also done on leaving the ``with`` block)."""
        for h in self._handles:
            h.remove()
        self._handles.clear()
        self.flush()

    def _on_model_start(
        self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        self._forward += 1
        self._layer = 0
        self._pending.clear()  # left by a forward pass that raised
        self._graph_edges = (
            self.edge_index if self.edge_index is not None else _find_edge_index(args, kwargs)
        )
        if self.include_input:
            x = _first_tensor(args) if args else _first_tensor(kwargs.get("x"))
            if x is not None and x.is_floating_point():
                self._record("input", x)

    def _on_model_end(self, module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        self.flush()

    def _make_hook(self, name: str) -> Callable[..., None]:
        def hook(module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
            out = _first_tensor(output)
            if out is not None:
                self._record(name, out)

        return hook

    # -- measuring
    def graph(self, num_nodes: int) -> ProbeGraph | None:
        """The :class:`ProbeGraph` for the current edge_index (cached per graph)."""
        ei = self._graph_edges
        if ei is None:
            return None
        key = (id(ei), num_nodes)
        if key not in self._graphs:
            self._graphs[key] = ProbeGraph(ei, num_nodes, y=self.y, **self.sampling)
        return self._graphs[key]

    @torch.no_grad()
    def _record(self, name: str, out: Tensor) -> None:
        x = out.detach()
        if x.dim() == 1:
            x = x.unsqueeze(1)
        elif x.dim() > 2:
            x = x.reshape(x.size(0), -1)
        record: dict[str, Any] = {
            "forward": self._forward,
            "layer": self._layer,
            "name": name,
            "channels": int(x.size(1)),
        }
        self._layer += 1
        self.records.append(record)
        if self.keep:
            self.states.append(x)
        if not self.metrics:
            return
        graph = self.graph(x.size(0))
        if graph is None:
            raise DataError(
                "the probe found no edge_index in the model's arguments; pass edge_index=..."
            )
        if graph.sampled:
            record["sampled"] = True
        index, slices = graph.layout(self.metrics, x.device)
        if name == "input":
            # The model's input rarely changes between forward passes (epochs): its metrics
            # are computed once per input tensor (and version), at once rather than buffered
            # (its width is usually far larger than the hidden layers').
            key = (x.data_ptr(), x._version, tuple(x.shape), x.dtype, id(graph))
            if key in self._input_cache:
                record.update(self._input_cache[key])
                return
            values = measure_layers(
                x.index_select(0, index).unsqueeze(0), graph, self.metrics, slices
            )[0]
            record.update(values)
            self._input_cache = {key: values}
            return
        # Every layer's sample goes straight into one preallocated stack per graph; narrower
        # layers are zero-padded to its width, which changes none of the metrics (zero
        # columns add nothing to distances, norms, cosines or non-zero singular values).
        group = (id(graph), index.numel(), x.dtype, x.device)
        buffer = self._buffers.get(group)
        items = self._pending.setdefault(group, [])
        if buffer is None or buffer.size(2) < x.size(1):
            if items:
                self._flush_group(group)
                items = self._pending.setdefault(group, [])
            width = x.size(1)
            rows = max(1, min(256, self.buffer_bytes // max(1, index.numel() * width * 4)))
            buffer = torch.empty(rows, index.numel(), width, dtype=x.dtype, device=x.device)
            self._buffers[group] = buffer
        slot = buffer[len(items)]
        if x.size(1) == buffer.size(2):
            torch.index_select(x, 0, index, out=slot)
        else:
            slot[:, : x.size(1)] = x.index_select(0, index)
            slot[:, x.size(1) :] = 0
        items.append((record, graph, slices))
        if len(items) == buffer.size(0):
            self._flush_group(group)

    def flush(self) -> None:
        """Compute the metrics of every buffered layer (done at the end of each forward)."""
        for group in list(self._pending):
            self._flush_group(group)

    def _flush_group(self, group: tuple[Any, ...]) -> None:
        items = self._pending.pop(group, [])
        if not items:
            return
        graph, slices = items[0][1], items[0][2]
        values = measure_layers(self._buffers[group][: len(items)], graph, self.metrics, slices)
        for (record, _, _), v in zip(items, values, strict=True):
            record.update(v)

    def last(self) -> list[dict[str, Any]]:
        """Records of the latest forward pass."""
        return [r for r in self.records if r["forward"] == self._forward]

    def reset(self) -> None:
        """Forget recorded layers and states (the hooks stay)."""
        self.records.clear()
        self.states.clear()
        self._pending.clear()
        self._forward = -1


def probe_layers(
    model: nn.Module,
    x: Tensor,
    edge_index: Tensor,
    metrics: str | Sequence[str] = DEFAULT_METRICS,
    *,
    y: Tensor | None = None,
    forward: Callable[[], Any] | None = None,
    **kwargs: Any,
) -> list[dict[str, Any]]:
    """One evaluation-mode, no-grad forward of ``model(x, edge_index)`` (or ``forward()``)
    under a :class:`LayerProbe`; returns its per-layer records. The model's train/eval mode
    is restored afterwards."""
    was_training = model.training
    model.eval()
    try:
        with (
            torch.no_grad(),
            LayerProbe(model, metrics, edge_index=edge_index, y=y, **kwargs) as probe,
        ):
            if forward is None:
                model(x, edge_index)
            else:
                forward()
    finally:
        model.train(was_training)
    return probe.records
