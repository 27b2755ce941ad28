"""Audio in: files decoded to 16 kHz mono (``files``), speech spans (``vad``), windows of at
most 30 s (``chunking``), log-mel features (``features``) and the speech manifests
(``datasets``).

Imports no model code: the batch job's CPU tasks and the server's worker threads run it
beside the model.
"""
