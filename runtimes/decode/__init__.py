"""Decoding, shared by every path: the one step and the loops (greedy, beam, sampling) of
the graph runtimes (``loops``), the logit filters (``filters``), the temperature fallback
ladder (``fallback``), tokens and languages, and the DTW alignment of words
(``alignment``).

Imports ``runtimes.base`` and ``runtimes.artifacts``; the engines, the transcript layer and
the server's stepper call it.
"""
