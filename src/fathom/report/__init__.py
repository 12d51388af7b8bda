"""Turning results into files people read: tables, plots, JSON."""
