"""Experiment: does NNCF's data-aware int4 (scale estimation, AWQ, GPTQ) lower OpenVINO
int4's WER on Whisper? And what does full int8 post-training quantisation (activations
too) cost on the encoder alone and on both graphs? Calibrated on real clips, evaluated on
the ``en`` subset.

    python scripts/nncf_data_aware.py --modes none se awq_se gptq
    python scripts/nncf_data_aware.py --modes ptq_encoder ptq_both --calibration-subsets formats multi

Builds the toolkit's OpenVINO graphs of bundled tiny.en, collects calibration inputs from
the clips of ``--calibration-subsets`` (default ``formats``: 4 English clips; encoder:
log-mel, decoder: every third greedy step). The int4 modes compress both graphs to int4
(group 64, every layer, as ``--to openvino --int4``); the ptq modes quantise weights and
activations with ``nncf.quantize`` (``ptq_encoder`` is what ``--quantization int8_static``
does, the decoder int8 weight-only). Prints decoder size and WER on ``en``. Artifacts go to
a temporary directory.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.metrics import error_rates  # noqa: E402
from runtimes.audio.datasets import from_manifest  # noqa: E402
from runtimes.audio.features import batch_log_mel  # noqa: E402
from runtimes.audio.files import load_audio  # noqa: E402

MANIFEST = ROOT.parent / "shared" / "data" / "speech" / "manifest.tsv"
MODES = {"none": {}, "se": {"scale_estimation": True}, "awq_se": {"awq": True, "scale_estimation": True},
         "gptq": {"gptq": True}}
#: Full int8 PTQ (nncf.quantize) of these graphs, the others as in ``--int8`` (weights only).
PTQ_MODES = {"ptq_encoder": ("encoder",), "ptq_both": ("encoder", "decoder")}


def calibration(encoder, decoder, clips, eot: int, prompt: list[int]):
    """Encoder inputs of each clip and decoder-step inputs along greedy decoding."""
    import openvino as ov

    core = ov.Core()
    enc = core.compile_model(encoder, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    dec = core.compile_model(decoder, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    past_names = [i.get_any_name() for i in dec.inputs if i.get_any_name().startswith("past")]
    cross_names = [o.get_any_name() for o in enc.outputs][1:]
    enc_items, dec_items = [], []
    for clip in clips:
        features = batch_log_mel([load_audio(clip.path)[:480000]], 80)
        enc_items.append({"input_features": features})
        out = enc({"input_features": features})
        cross = {n: out[n].copy() for n in cross_names}
        shape = tuple(dec.input(past_names[0]).get_partial_shape().get_min_shape())
        past = [np.zeros((1, shape[1], 0, shape[3]), np.float32) for _ in past_names]
        ids = np.asarray([prompt], np.int64)
        for step in range(60):
            item = {"input_ids": ids, **dict(zip(past_names, past)), **cross}
            if any(i.get_any_name() == "cache_lengths" for i in dec.inputs):
                item["cache_lengths"] = np.asarray([past[0].shape[2]], np.int64)
            if step % 3 == 0:
                dec_items.append({k: v.copy() for k, v in item.items()})
            result = dec(item)
            token = int(result["logits"][0].argmax())
            if token == eot:
                break
            past = [result[n.replace("past", "present")].copy() for n in past_names]
            ids = np.asarray([[token]], np.int64)
    return enc_items, dec_items


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--modes", nargs="+", default=list(MODES), choices=[*MODES, *PTQ_MODES])
    p.add_argument("--calibration-subsets", nargs="+", default=["formats"],
                   help="manifest subsets to calibrate on (default: formats, 4 English clips)")
    args = p.parse_args()
    import nncf
    import openvino as ov

    import runtimes
    from exporters.api import export
    from exporters.families.whisper import export_onnx, load_model
    from exporters.options import ExportOptions
    from exporters.sources import resolve

    tmp = Path(tempfile.mkdtemp(prefix="nncf-"))
    bases = {"int4": tmp / "int4", "int8": tmp / "int8"}
    for precision, path in bases.items():
        export("bundled:tiny.en", ExportOptions("openvino", precision), path, log=lambda _: None)
    export_onnx(load_model(resolve("bundled:tiny.en").hf_dir), tmp, vocab_major=True)
    graphs = {g: ov.convert_model(str(tmp / f"{g}.onnx")) for g in ("encoder", "decoder")}
    rows = from_manifest(MANIFEST)
    calib = [c for c in rows if c.subset in args.calibration_subsets]
    if not calib or {"en", "longform"} & set(args.calibration_subsets):
        p.error("--calibration-subsets must name subsets other than the evaluated en/longform")
    items = dict(zip(("encoder", "decoder"),
                     calibration(graphs["encoder"], graphs["decoder"], calib, 50256, [50257, 50362])))
    en = [c for c in rows if c.subset == "en"]
    audio = [load_audio(c.path) for c in en]
    print(f"calibration: {len(calib)} clips, {len(items['encoder'])} encoder and "
          f"{len(items['decoder'])} decoder samples; evaluation: {len(en)} en clips")
    print("| mode | decoder.bin MB | WER % |\n|---|---:|---:|")
    for mode in args.modes:
        out = tmp / mode
        shutil.copytree(bases["int8" if mode in PTQ_MODES else "int4"], out)
        (out / "artifact.json").unlink()
        for name in PTQ_MODES.get(mode, ()):
            quantized = nncf.quantize(graphs[name].clone(), nncf.Dataset(items[name]),
                                      model_type=nncf.ModelType.TRANSFORMER,
                                      subset_size=len(items[name]))
            ov.save_model(quantized, str(out / f"{name}.xml"), compress_to_fp16=False)
        if mode in MODES and mode != "none":
            for name, model in graphs.items():
                compressed = nncf.compress_weights(
                    model.clone(), mode=nncf.CompressWeightsMode.INT4_SYM, group_size=64, ratio=1.0,
                    all_layers=True, dataset=nncf.Dataset(items[name]),
                    subset_size=len(items[name]), **MODES[mode])
                ov.save_model(compressed, str(out / f"{name}.xml"), compress_to_fp16=False)
        with runtimes.load(out, runtimes.RuntimeOptions(threads=2)) as model:
            texts = [t.text for t in model.transcribe(audio, 8)]
        wer = error_rates([c.reference for c in en], texts, ["en"] * len(en)).wer
        size = (out / "decoder.bin").stat().st_size / 1e6
        print(f"| {mode} | {size:.1f} | {100 * wer:.2f} |", flush=True)
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
