"""Thin experiment entry points: flags in, gan_jax library calls, run directory out."""
