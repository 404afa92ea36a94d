"""Metrics: what a trained generator learned, as numbers (pure JAX functions, vmappable over members)."""
