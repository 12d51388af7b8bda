"""Running experiments: one config over seeds (sweeps and the results store come later)."""
