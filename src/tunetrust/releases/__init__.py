"""Differentially private releases: spec → eligible members → engine → noise → manifest."""
