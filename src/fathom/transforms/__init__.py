"""Graph transforms usable in any training config (rewiring against over-squashing)."""
