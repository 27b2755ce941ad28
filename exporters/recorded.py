"""Export options the manifest records about a precision (calibration audio, the CPU kind
int8 weights are tuned for, how int8 activations are scaled), each checked against the
target and precision before any work: an option given where it changes nothing is refused
in one line rather than silently ignored."""

from __future__ import annotations

from exporters.options import ExportOptions
from exporters.targets.base import Target
from runtimes.errors import OptionError


def recorded_options(target: Target, precision: str, options: ExportOptions) -> dict:
    """What the manifest's options record for this export (refusing what does not apply)."""
    return {**calibration(target, precision, options),
            **int8_kernels(target, precision, options),
            **int8_activations(target, precision, options)}


def calibration(target: Target, precision: str, options: ExportOptions) -> dict:
    """Check that calibration audio is given exactly when the precision needs it (before
    any work); its description for the manifest."""
    from exporters.compress import check_audio

    needed = target.calibrated(precision)
    if options.calibration is None and needed:
        raise OptionError(
            f"{target.name} {precision} quantises activations and needs calibration "
            f"audio: pass --calibration (a folder of audio files or a manifest TSV of "
            f"speech like the deployment's)")
    measuring = check_audio(options.compression_steps(), options.calibration)
    if options.calibration is None:
        return {}
    if not needed and not measuring:
        raise OptionError(f"--calibration applies to precisions that quantise activations "
                          f"and to --compress steps ending :activation; {target.name} "
                          f"{precision} without such a step uses none")
    files = options.calibration.files()
    return {"calibration": options.calibration.to_dict(len(files))}


def int8_kernels(target: Target, precision: str, options: ExportOptions) -> dict:
    """The CPU kind the int8 weights are tuned for, for the manifest; an explicit choice
    for a precision it does not apply to is refused before any work."""
    if target.tunes_int8(precision):
        return {"int8_kernels": options.resolved_int8_kernels()}
    if options.int8_kernels != "auto":
        raise OptionError(f"--int8-kernels applies to onnx int8 and int4; {target.name} "
                          f"{precision} does not depend on it")
    return {}


def int8_activations(target: Target, precision: str, options: ExportOptions) -> dict:
    """How the activations are scaled, for the manifest; an explicit choice for a precision
    it does not apply to is refused before any work."""
    if target.scales_activations(precision):
        return {"int8_activations": options.int8_activations}
    if options.int8_activations != "clip":
        raise OptionError(f"--int8-activations applies to onnx int8 and int4; {target.name} "
                          f"{precision} does not quantise activations dynamically")
    return {}
