"""Model families: what is specific to an architecture (graphs, dummy inputs)."""
