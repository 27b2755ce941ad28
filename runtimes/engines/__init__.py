"""Inference engines, one module each; see runtimes.registry."""
