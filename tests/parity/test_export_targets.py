"""The tiny random Whisper exported to every registered target in every CPU precision,
checked against the PyTorch reference it came from."""

import os
from pathlib import Path

import numpy as np
import pytest

import runtimes
from exporters import registry
from exporters.api import export
from exporters.calibration import CalibrationSet
from exporters.options import ExportOptions
from runtimes.artifacts.manifest import read_manifest, verify
from runtimes.audio.features import batch_log_mel
from runtimes.audio.files import load_audio
from runtimes.cpu import cpu_info

CASES = [(t, p) for t in registry.names() for p in registry.get(t).offered("cpu")]
FLOAT32 = ("float32", "fp32")


@pytest.fixture(scope="module")
def reference(tiny_random):
    model = runtimes.load(tiny_random, runtimes.RuntimeOptions(threads=2))
    yield model
    model.close()


@pytest.fixture(scope="module")
def clips(speech_rows):
    from tests.conftest import SPEECH

    en = [r for r in speech_rows if r["subset"] == "en"][:4]
    return [load_audio(SPEECH / r["path"]) for r in en]


@pytest.fixture(scope="module")
def reference_tokens(reference, clips) -> list:
    """The reference's tokens of the clips, decoded once for every fp32 case."""
    return [t.tokens for t in reference.transcribe(clips, batch_size=2)]


def test_reference_output_is_not_degenerate(reference, clips):
    # With the default init_std every model repeats one token and parity passes trivially.
    tokens = reference.transcribe(clips[:1])[0].tokens
    assert len(tokens) > 10 and len(set(tokens)) > 5


@pytest.mark.parametrize("target, precision", CASES)
def test_export_every_cpu_precision(target, precision, tiny_random, reference, clips, tmp_path,
                                    jfk, request):
    from tests.conftest import MANIFEST

    if reason := registry.get(target).unsupported(tiny_random):
        pytest.skip(f"the tiny random model: {reason} (real tiny.en: tests/slow)")
    out = tmp_path / precision
    calibrated = registry.get(target).calibrated(precision)
    calibration = CalibrationSet(MANIFEST, ("formats",), 3) if calibrated else None
    result = export(str(tiny_random), ExportOptions(target, precision, threads=2,
                                                    calibration=calibration),
                    out, parity_audio=jfk, log=lambda _: None)
    manifest = read_manifest(out)
    if calibrated:  # the manifest says what the activation ranges were measured on
        assert manifest.options["calibration"] == {
            "path": str(MANIFEST.resolve()), "subsets": ["formats"], "max_windows": 3, "files": 4}
    assert result.path == out and manifest.format == registry.get(target).format
    assert manifest.precision == precision and manifest.parity["passed"]
    assert manifest.parity["machine"] == cpu_info().label()
    if registry.get(target).tunes_int8(precision):  # tuned for this machine's CPU kind
        assert manifest.int8_kernels == ("vnni" if cpu_info().int8_dot_product
                                                    else "avx2")
    verify(out, manifest)
    assert {"tokenizer.json", "preprocessor_config.json"} <= {f.path for f in manifest.files}
    tolerance = registry.get(target).tolerance(precision)

    pinned = registry.get(target).parity_precision(precision)  # OpenVINO: f32, not bf16
    options = runtimes.RuntimeOptions(threads=2, precision=pinned, trust_code=True)
    with runtimes.load(out, options) as model:
        features = batch_log_mel(clips[:2])
        ours, ref = model.runtime.encode(features), reference.runtime.encode(features)
        rel = np.linalg.norm(ours - ref) / np.linalg.norm(ref)
        assert rel <= tolerance.encoder_rel_error
        if precision in FLOAT32:
            # All 224 tokens of every clip: the test model has no timestamp tokens to emit and
            # a trained-like encoder (tests/conftest.py), so fp32 runtimes agree to the last
            # token.
            got = [t.tokens for t in model.transcribe(clips, batch_size=2)]
            assert got == request.getfixturevalue("reference_tokens")
    # Quantised: the random decoder's init_std=1.0 weights make int8 tokens diverge within a
    # few steps, so only the encoder tolerance is checked here (the export's own parity
    # check decoded them); the real tier (tests/slow) checks int8 WER on real speech against
    # PyTorch fp32.


def test_failed_export_leaves_nothing_behind(tiny_random, tmp_path):
    bad_clip = tmp_path / "clip.wav"
    bad_clip.write_text("not audio")
    out = tmp_path / "artifacts" / "x"
    from runtimes.errors import AudioError

    with pytest.raises(AudioError):
        export(str(tiny_random), ExportOptions("ctranslate2", threads=2), out,
               parity_audio=bad_clip, log=lambda _: None)
    assert list((tmp_path / "artifacts").iterdir()) == []


def test_force_replaces_an_artifact_and_nothing_else(tiny_random, onnx_int8, tmp_path, jfk):
    from exporters.errors import OutputExistsError

    data = tmp_path / "data"
    data.mkdir()
    (data / "thesis.txt").write_text("years of work")
    with pytest.raises(OutputExistsError, match="--force replaces artifacts only.*is not one"):
        export(str(tiny_random), ExportOptions("ctranslate2", "int8", threads=2), data,
               force=True, parity_audio=jfk, log=lambda _: None)
    assert (data / "thesis.txt").read_text() == "years of work"
    out = _copy(onnx_int8, tmp_path / "artifacts")
    dead = out.parent / f".{out.name}.partial-999999999-x"  # left by a killed export
    alive = out.parent / f".{out.name}.partial-{os.getpid()}-y"  # a running one
    dead.mkdir()
    alive.mkdir()
    said = []
    export(str(tiny_random), ExportOptions("ctranslate2", "int8", threads=2), out, force=True,
           parity_audio=jfk, log=said.append)
    assert read_manifest(out).precision == "int8_float32" and not (out / "decoder.onnx").exists()
    assert not dead.exists() and alive.exists()
    assert f"removed {dead}, left by an export that was killed" in said
    assert sorted(p.name for p in out.parent.iterdir()) == sorted([out.name, alive.name])


def test_an_output_that_appears_during_the_export_is_not_overwritten(tmp_path):
    from exporters.errors import OutputExistsError
    from exporters.output import replace_output as _replace

    tmp, output = tmp_path / ".a.partial-1-x", tmp_path / "a"
    tmp.mkdir()
    (tmp / "new").write_text("new")
    output.mkdir()
    (output / "first").write_text("the other export's")
    with pytest.raises(OutputExistsError, match="appeared while exporting"):
        _replace(tmp, output, force=False)
    assert [p.name for p in output.iterdir()] == ["first"]


def test_sigterm_leaves_nothing_behind(tiny_random, tmp_path, jfk):
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "artifacts" / "t"
    process = subprocess.Popen(
        [sys.executable, "-m", "exporters", "whisper", "--to", "onnx", "--model",
         str(tiny_random), "-o", str(out), "--threads", "2", "--parity-audio", str(jfk)],
        stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not list(out.parent.glob(".t.partial-*")) and time.time() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130 and "interrupted; nothing was written" in err
    assert list(out.parent.iterdir()) == []


def test_loading_a_truncated_artifact_fails_clearly(tiny_random, tmp_path, jfk):
    out = tmp_path / "t"
    export(str(tiny_random), ExportOptions("ctranslate2", threads=2), out, parity_audio=jfk,
           log=lambda _: None)
    model_bin = Path(out / "model.bin")
    model_bin.write_bytes(model_bin.read_bytes()[:1000])
    from runtimes.errors import ArtifactError

    with pytest.raises(ArtifactError, match="model.bin has 1000 bytes"):
        runtimes.load(out)


@pytest.fixture(scope="module")
def onnx_int8(tiny_random, tmp_path_factory, jfk):
    out = tmp_path_factory.mktemp("onnx-int8") / "a"
    export(str(tiny_random), ExportOptions("onnx", "int8", threads=2), out, parity_audio=jfk,
           log=lambda _: None)
    return out


def _copy(artifact: Path, tmp_path: Path) -> Path:
    import shutil

    return Path(shutil.copytree(artifact, tmp_path / artifact.name))


def test_a_same_size_edit_is_caught_by_its_checksum(onnx_int8, tmp_path):
    from runtimes.errors import ArtifactError

    out = _copy(onnx_int8, tmp_path)
    tokenizer = out / "tokenizer.json"
    text = tokenizer.read_text()
    tokenizer.write_text(text.replace('"Ġask":', '"Ġxsk":', 1))  # same size, other ids
    assert tokenizer.stat().st_size == (onnx_int8 / "tokenizer.json").stat().st_size
    with pytest.raises(ArtifactError, match="sha256 of tokenizer.json does not match"):
        runtimes.load(out)
    graph = out / "decoder.onnx"
    graph.write_bytes(b"\0" * graph.stat().st_size)  # with checksums off, the loader says
    with pytest.raises(ArtifactError, match="ONNX Runtime cannot load .*decoder.onnx"):
        runtimes.load(out, runtimes.RuntimeOptions(verify_checksums=False))


def test_manifests_that_vouch_for_nothing_or_point_outside_are_refused(onnx_int8, tmp_path):
    import dataclasses

    from runtimes.artifacts.manifest import FileEntry, write_manifest
    from runtimes.errors import ArtifactError

    out = _copy(onnx_int8, tmp_path)
    manifest = read_manifest(out)
    write_manifest(out, dataclasses.replace(manifest, files=()))
    with pytest.raises(ArtifactError, match="its manifest lists no files"):
        runtimes.load(out)
    outside = FileEntry("../secret", 1, "0" * 64)
    write_manifest(out, dataclasses.replace(manifest, files=(*manifest.files, outside)))
    with pytest.raises(ArtifactError, match="lists '../secret', outside its directory"):
        runtimes.load(out)
    (out / "artifact.json").write_text("[1, 2]")
    with pytest.raises(ArtifactError, match="not a valid manifest: a JSON list"):
        runtimes.load(out)
    (out / "artifact.json").unlink()
    with pytest.raises(ArtifactError, match="onnx artifact without its artifact.json"):
        runtimes.load(out)


def test_a_deployment_pins_the_manifest_digest(onnx_int8):
    from runtimes.artifacts.manifest import manifest_digest
    from runtimes.errors import ArtifactError

    digest = manifest_digest(onnx_int8)
    assert digest.startswith("sha256:") and len(digest) == 71
    with runtimes.load(onnx_int8, runtimes.RuntimeOptions(expect_digest=digest)):
        pass
    with pytest.raises(ArtifactError, match="not the expected sha256:0000"):
        runtimes.load(onnx_int8, runtimes.RuntimeOptions(expect_digest="sha256:" + "0" * 64))


def test_onnx_threads_sleep_instead_of_spinning_when_cores_are_shared(onnx_int8):
    """The server loads with shared_cores=True: ONNX Runtime's idle threads must not spin on
    the cores its request threads need (README, load test)."""
    out = onnx_int8
    for shared, expected in ((True, {"0"}), (False, {"unset"})):
        options = runtimes.RuntimeOptions(threads=2, shared_cores=shared)
        with runtimes.load(out, options) as model:
            sessions = (model.runtime._encoder, model.runtime._decoder)
            assert {_spinning_entry(s) for s in sessions} == expected


def _spinning_entry(session) -> str:
    try:
        return session.get_session_options().get_session_config_entry(
            "session.intra_op.allow_spinning")
    except Exception:  # noqa: BLE001 - ONNX Runtime raises for an entry never set
        return "unset"


@pytest.mark.parametrize("damage, message", [
    ("truncate-weights", "SafetensorError"),
    ("wrong-vocabulary", "converting .* failed"),
])
def test_a_broken_source_is_one_line_and_leaves_nothing(damage, message, tiny_random, tmp_path,
                                                        jfk):
    import json
    import shutil

    from exporters.errors import ExportError

    source = Path(shutil.copytree(tiny_random, tmp_path / "source"))
    if damage == "truncate-weights":
        weights = source / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    else:
        config = json.loads((source / "config.json").read_text())
        (source / "config.json").write_text(json.dumps({**config, "vocab_size": 1000}))
    out = tmp_path / "artifacts" / "x"
    with pytest.raises(ExportError, match=message):
        export(str(source), ExportOptions("onnx", threads=2), out, parity_audio=jfk,
               log=lambda _: None)
    assert list(out.parent.iterdir()) == []


def test_a_full_disk_is_one_line_and_leaves_nothing(tiny_random, tmp_path, jfk):
    """Writes fail with EFBIG past a file-size limit (RLIMIT_FSIZE), as they fail with ENOSPC
    on a full disk: the export says so in one line, exit 2, and leaves no partial directory."""
    import resource
    import signal
    import subprocess
    import sys

    def limit_file_size():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write then fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))

    out = tmp_path / "artifacts" / "x"
    out.parent.mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "exporters", "whisper", "--to", "onnx", "--model",
         str(tiny_random), "-o", str(out), "--threads", "2", "--parity-audio", str(jfk)],
        capture_output=True, text=True, timeout=300, preexec_fn=limit_file_size)
    errors = [line for line in done.stderr.splitlines() if not line.startswith("[")]
    assert done.returncode == 2, done.stderr
    assert len(errors) == 1 and "failed" in errors[0] and "File too large" in errors[0], errors
    assert list(out.parent.iterdir()) == []


def test_stage_times_splits_a_transcription_into_its_stages(onnx_int8, tiny_random, capsys):
    """scripts/stage_times.py: the stages sum to less than the total, one row per artifact;
    a runtime without the graph stages (PyTorch, CTranslate2) is one line, exit 2."""
    import sys

    from tests.conftest import MANIFEST

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
    import stage_times

    assert stage_times.main([str(onnx_int8), "--manifest", str(MANIFEST), "--limit", "2"]) == 0
    row = capsys.readouterr().out.strip().splitlines()[-1].split("|")
    total, stages, rest = float(row[2]), row[3:-2], float(row[-2])
    assert len(stages) == 3 and total > 0 and rest > -1.0  # ms; the stages fit in the total
    assert float(stages[1].split()[0]) > 0 and "(1.0," in stages[1]  # one encoder call a clip
    assert stage_times.main([str(onnx_int8), "--limit", "0", "--manifest", str(MANIFEST)]) == 2
    assert "--limit must be >= 1, got 0" in capsys.readouterr().err
    assert stage_times.main([str(tiny_random), "--limit", "1", "--manifest", str(MANIFEST)]) == 2
    assert "runtime has no cross_cache stage to time" in capsys.readouterr().err
