#!/usr/bin/env bash
# Set up (once), export bundled tiny.en to CTranslate2 int8, and benchmark it against the
# PyTorch fp32 baseline and faster-whisper int8 on the real `en` speech subset.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
artifact=artifacts/tiny.en-ctranslate2-int8
python -m exporters whisper --to ctranslate2 --int8 --model bundled:tiny.en -o "$artifact" --force
python -m bench "$artifact" --model bundled:tiny.en --subset en \
    --manifest ../shared/data/speech/manifest.tsv --batch-sizes 1 8 --repeats 3 --threads 2 \
    --out results/demo "$@"
