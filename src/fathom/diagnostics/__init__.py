"""Diagnostics of over-smoothing and over-squashing: metrics, layer probes, structure.

- :mod:`~fathom.diagnostics.oversmoothing`: pure metric functions (Dirichlet energy, MAD /
  MADGap, numerical and effective rank, distance to the dominant subspace, class separation);
- :mod:`~fathom.diagnostics.probes`: :class:`LayerProbe`, hooks recording every layer of any
  ``nn.Module`` (fathom models, PyG ``BasicGNN`` s, stacks of PyG convs);
- :mod:`~fathom.diagnostics.oversquashing`: Jacobian sensitivity by hop distance, effective
  resistance (exact and Spielman–Srivastava), hop distances;
- :mod:`~fathom.diagnostics.curvature`: Balanced Forman curvature and bottleneck edges;
- :mod:`~fathom.diagnostics.structure`: receptive-field growth, diameters, clustering,
  small-world coefficient, homophily;
- :mod:`~fathom.diagnostics.diagnose`: what ``fathom diagnose`` runs.
"""

from fathom.diagnostics.curvature import balanced_forman_curvature, bottleneck_edges
from fathom.diagnostics.diagnose import diagnose_graph, diagnose_model, energy_decay_rate
from fathom.diagnostics.oversmoothing import (
    class_separation,
    dirichlet_energy,
    dominant_subspace_distance,
    effective_rank,
    mad,
    mad_gap,
    normalized_dirichlet_energy,
    numerical_rank,
)
from fathom.diagnostics.oversquashing import (
    effective_resistance,
    hop_distances,
    jacobian_sensitivity,
    total_effective_resistance,
)
from fathom.diagnostics.probes import LayerProbe, find_layers, probe_layers
from fathom.diagnostics.structure import (
    StructureReport,
    clustering_coefficient,
    receptive_field_growth,
    structure_report,
)

__all__ = [
    "LayerProbe",
    "StructureReport",
    "balanced_forman_curvature",
    "bottleneck_edges",
    "class_separation",
    "clustering_coefficient",
    "diagnose_graph",
    "diagnose_model",
    "dirichlet_energy",
    "dominant_subspace_distance",
    "effective_rank",
    "effective_resistance",
    "energy_decay_rate",
    "find_layers",
    "hop_distances",
    "jacobian_sensitivity",
    "mad",
    "mad_gap",
    "normalized_dirichlet_energy",
    "numerical_rank",
    "probe_layers",
    "receptive_field_growth",
    "structure_report",
    "total_effective_resistance",
]
