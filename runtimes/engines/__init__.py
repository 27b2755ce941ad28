"""Inference engines, one module each; see runtimes.engines.registry."""
