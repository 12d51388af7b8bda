"""Diagnostics of over-smoothing and over-squashing: metrics, layer probes, structure."""
