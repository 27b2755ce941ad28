"""Export targets, one module each; see exporters.registry."""
