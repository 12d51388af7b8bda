"""Graph transforms usable in any training config (``data.rewire``): rewiring against
over-squashing, as PyG ``BaseTransform`` s."""

from fathom.transforms.rewiring import REWIRINGS, SDRF, FoSR, build_rewiring, spectral_gap

__all__ = ["REWIRINGS", "SDRF", "FoSR", "build_rewiring", "spectral_gap"]
