"""Bad CLI input fails before any work, with the value named and exit code 2."""

import subprocess
import sys

import pytest

from exporters.cli import main


def test_unknown_target_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit) as info:
        main(["whisper", "--to", "tflite"])
    assert info.value.code == 2
    assert "invalid choice: 'tflite'" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["--fp16"], "compute type 'float16' is not supported on device 'cpu'"),
    (["--quantization", "int3"], "precision 'int3' is not offered by the ctranslate2 target"),
    (["--device", "cuda"], "device 'cuda' was requested but CTranslate2 sees no CUDA GPU"),
    (["--model", "/definitely/not/here"], "model path not found: /definitely/not/here"),
])
def test_bad_export_arguments(args, message, capsys, tmp_path):
    code = main(["whisper", "--to", "ctranslate2", "-o", str(tmp_path / "out"), *args])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args, message", [
    (["--quantization", "int8_static"],
     "openvino int8_static quantises activations and needs calibration audio"),
    (["--int8", "--calibration", "."], "--calibration applies to precisions that quantise "
                                       "activations and to --compress steps ending "
                                       ":activation; openvino int8 without such a step"),
    (["--quantization", "int8_static", "--calibration", "/no/such/dir"],
     "--calibration: manifest not found: /no/such/dir"),
    (["--quantization", "int8_static", "--calibration-subset", "en"],
     "--calibration-subset needs --calibration"),
    (["--quantization", "int8_static", "--calibration", ".", "--calibration-size", "0"],
     "--calibration-size must be >= 1, got 0"),
])
def test_bad_calibration_arguments(args, message, capsys, tmp_path):
    pytest.importorskip("openvino", reason="the openvino extra is not installed")
    code = main(["whisper", "--to", "openvino", "-o", str(tmp_path / "out"), *args])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args, message", [
    (["--distill", "."], "--distill fine-tunes a compressed model: add --compress"),
    (["--distill-subset", "en"], "--distill-subset needs --distill"),
    (["--compress", "drop-decoder-layers:2", "--distill", "/no/such/dir"],
     "--distill: manifest not found: /no/such/dir"),
    (["--compress", "drop-decoder-layers:2", "--distill", ".", "--distill-steps", "0"],
     "--distill-steps must be >= 1, got 0"),
    (["--compress", "prune-heads:0.25"], "CTranslate2's Whisper model has one head count"),
    (["--compress", "prune-ffn:0.25:activation"],
     "--compress prune-ffn:0.25:activation measures importance on audio: pass --calibration"),
    (["--compress", "prune-ffn:0.25:weights"],
     "expected prune-ffn:FRACTION[:magnitude|activation]"),
])
def test_bad_compression_arguments(args, message, capsys, tmp_path):
    code = main(["whisper", "--to", "ctranslate2", "-o", str(tmp_path / "out"), *args])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_calibration_folder_without_audio_is_refused(capsys, tmp_path):
    pytest.importorskip("openvino", reason="the openvino extra is not installed")
    code = main(["whisper", "--to", "openvino", "--quantization", "int8_static",
                 "--calibration", str(tmp_path), "-o", str(tmp_path / "out")])
    assert code == 2
    assert "--calibration: no audio files (.wav" in capsys.readouterr().err


@pytest.mark.parametrize("flag, extra", [
    ("--distill", ["--compress", "drop-decoder-layers:2"]),
    ("--calibration", ["--compress", "prune-ffn:0.25:activation"]),
])
def test_audio_files_that_do_not_decode_are_refused_before_any_work(flag, extra, capsys,
                                                                    tmp_path):
    """Issue 32: --distill with a folder of files that are not audio failed only after
    compression had run (18 s, 4 lines)."""
    import time

    folder = tmp_path / "clips"
    folder.mkdir()
    (folder / "a.wav").write_bytes(b"RIFF" + b"not audio at all" * 64)
    started = time.perf_counter()
    code = main(["whisper", "--to", "ctranslate2", "-o", str(tmp_path / "out"), *extra,
                 flag, str(folder)])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert f"{flag}: not a decodable audio file: {folder / 'a.wav'}" in err
    assert time.perf_counter() - started < 5 and not (tmp_path / "out").exists()


def test_directory_that_is_not_a_whisper_model(capsys, tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "bert"}')
    code = main(["whisper", "--to", "ctranslate2", "--model", str(tmp_path),
                 "-o", str(tmp_path / "out")])
    assert code == 2
    assert "is not a Whisper model" in capsys.readouterr().err


def test_existing_output_without_force(capsys, tmp_path):
    (tmp_path / "out").mkdir()
    code = main(["whisper", "--to", "ctranslate2", "-o", str(tmp_path / "out")])
    assert code == 2
    assert "exists; pass --force" in capsys.readouterr().err


def test_module_entry_point_exits_non_zero():
    proc = subprocess.run([sys.executable, "-m", "exporters", "verify", "/no/such/artifact"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "artifact.json is missing" in proc.stderr


def test_bench_rejects_bad_arguments(capsys, tmp_path):
    from bench.cli import main as bench_main

    bad = tmp_path / "m.tsv"
    bad.write_text("id\tpath\n")
    assert bench_main(["--manifest", str(bad)]) == 2
    assert "lacks column(s) reference" in capsys.readouterr().err
    assert bench_main(["--batch-sizes", "0"]) == 2
    assert "--batch-sizes must be >= 1" in capsys.readouterr().err


def test_transcribe_cli_names_a_directory_that_is_no_model(capsys, tmp_path):
    from runtimes.__main__ import main as transcribe_main

    assert transcribe_main([str(tmp_path), "a.wav"]) == 2
    assert "is not a Whisper artifact or model directory" in capsys.readouterr().err


@pytest.mark.parametrize("audio, args, message", [
    (["{tmp}"], [], "{tmp} is a directory: give audio files (python -m runtimes.batch"),
    (["a.wav", "b.wav"], ["--format", "srt"],
     "--format srt writes one file's segments to standard output, got 2 files"),
    (["a.wav", "b.wav"], ["--format", "vtt"], "--format vtt writes one file's segments"),
    (["a.wav", "b.wav"], ["--format", "tsv"], "--format tsv writes one file's segments"),
    (["a.wav"], ["--format", "all"], "--format all writes one file per format: give --output-dir"),
    (["x/a.wav", "y/a.mp3"], ["--output-dir", "{tmp}/out"],
     "--output-dir: several inputs are named 'a' (without their extension)"),
    (["a.wav"], ["--output-dir", "{tmp}/file"], "--output-dir {tmp}/file exists and is not a dir"),
])
def test_transcribe_cli_refuses_a_folder_and_several_files_as_subtitles(audio, args, message,
                                                                        capsys, tmp_path):
    """Issue 32: a folder was 'not found'; several files' SRT restarted its numbering at 1
    under '# FILE' lines, which no SRT reader accepts. Both before the model loads."""
    from runtimes.__main__ import main as transcribe_main

    audio = [a.format(tmp=tmp_path) for a in audio]
    (tmp_path / "file").write_text("not a folder")
    args = [a.format(tmp=tmp_path) for a in args]
    assert transcribe_main([str(tmp_path), *audio, *args]) == 2
    err = capsys.readouterr().err
    assert message.format(tmp=tmp_path) in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("args, message", [
    (["--temperature", "1.5"], "temperature must be a number in 0..1 or a list of them"),
    (["--temperature", "0", "nan"], "temperature must be a number in 0..1"),
    (["--best-of", "0"], "best_of must be an integer >= 1, got 0"),
    (["--log-prob-threshold", "nan"], "log_prob_threshold must be a number or None"),
    (["--max-subtitle-s", "0.5"], "--max-subtitle-s must be a number of seconds >= 1, got 0.5"),
    (["--max-subtitle-s", "nan"], "--max-subtitle-s must be a number of seconds >= 1, got nan"),
])
def test_transcribe_cli_refuses_bad_fallback_settings(args, message, capsys, tmp_path):
    from runtimes.__main__ import main as transcribe_main

    assert transcribe_main([str(tmp_path), "a.wav", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_every_target_exports_word_timestamps_and_tensorrt_needs_its_gpu(capsys, tmp_path):
    """Every target but ggml can add what word timestamps need (CTranslate2 artifacts
    always have it; whisper.cpp's API gives no cross-attention here, and the export says
    so); TensorRT still fails before any work where there is no GPU."""
    from exporters import registry

    assert [name for name in registry.names() if not registry.get(name).aligns] == ["ggml"]
    code = main(["whisper", "--to", "ggml", "--word-timestamps", "-o", str(tmp_path / "g")])
    assert code == 2 and not (tmp_path / "g").exists()
    assert "--word-timestamps is not available for ggml exports" in capsys.readouterr().err
    code = main(["whisper", "--to", "tensorrt", "--word-timestamps", "-o", str(tmp_path / "o")])
    assert code == 2 and not (tmp_path / "o").exists()
    assert "builds engines for an NVIDIA GPU" in capsys.readouterr().err


def test_onnx_fp16_on_cpu_is_refused(capsys, tmp_path):
    code = main(["whisper", "--to", "onnx", "--fp16", "-o", str(tmp_path / "out")])
    assert code == 2
    assert "onnx fp16 runs on cuda only" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args, message", [
    (["--to", "tensorrt"], "the tensorrt target builds engines for an NVIDIA GPU"),
    (["--to", "tensorrt", "--int8", "--device", "cuda"], "tensorrt int8 needs an explicitly"),
    (["--to", "openvino", "--fp16"], "'fp16' is not offered by the openvino target"),
    (["--to", "onnx", "--quantization", "int3"], "'int3' is not offered by the onnx target"),
])
def test_unsupported_precisions_and_devices_per_target(args, message, capsys, tmp_path):
    assert main(["whisper", *args, "-o", str(tmp_path / "out")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


# The hardening issue's cases (15, items 6 and 7): each is one line and exit 2 before work.
@pytest.mark.parametrize("manifest, message", [
    ("id\tpath\treference\nx\n", "line 2 has fewer fields than its header"),
    ("id\tpath\treference\n", "lists no clips (only a header)"),
    (b"id\tpath\treference\nx\t\xff\xfe.wav\tr\n", "is not UTF-8 text"),
])
def test_broken_manifests_are_one_line(manifest, message, capsys, tmp_path):
    from bench.cli import main as bench_main

    path = tmp_path / "m.tsv"
    path.write_bytes(manifest if isinstance(manifest, bytes) else manifest.encode())
    assert bench_main(["--manifest", str(path), "--pytorch", "none",
                       "--faster-whisper", "none"]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["--pytorch", "float8"], "--pytorch 'float8' is not one of: fp32"),
    (["--faster-whisper", "int3"], "--faster-whisper 'int3' is not one of: int8"),
    (["--faster-whisper-batched", "int3"], "--faster-whisper-batched 'int3' is not one of"),
])
def test_bench_row_types_are_checked_before_work(args, message, capsys):
    from bench.cli import main as bench_main

    assert bench_main(args) == 2
    assert message in capsys.readouterr().err


def test_negative_export_threads_fail_before_the_conversion(capsys, tmp_path):
    assert main(["whisper", "--to", "onnx", "--threads", "-1", "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "threads must be >= 0, got -1" in err and "[2/4]" not in err


def test_an_output_under_a_file_is_one_line(capsys, tmp_path):
    (tmp_path / "file").write_text("x")
    assert main(["whisper", "--to", "ctranslate2", "-o", str(tmp_path / "file" / "o")]) == 2
    assert "cannot create the output's folder" in capsys.readouterr().err


@pytest.mark.parametrize("language, task, message", [
    ("de", "transcribe", "language 'de': this model is English-only"),
    ("xx", "transcribe", "language 'xx' is not an ISO-639-1 code"),
    (None, "translate", "this model is English-only; it cannot translate"),
])
def test_a_language_or_task_an_english_model_cannot_honour(language, task, message):
    from runtimes.errors import OptionError
    from runtimes.transcript.pipeline import check_language

    with pytest.raises(OptionError, match=message):
        check_language(language, task, multilingual=False)
    check_language("de", "translate", multilingual=True)


def test_output_dir_is_not_made_when_the_run_fails_before_writing(tmp_path, capsys):
    """--output-dir: the folder appears only once there is something to write in it (a bad
    artifact left an empty one)."""
    from runtimes.__main__ import main as transcribe_main

    out = tmp_path / "out"
    assert transcribe_main([str(tmp_path / "no-artifact"), "a.wav", "--format", "all",
                            "--output-dir", str(out)]) == 2
    assert "model directory not found" in capsys.readouterr().err
    assert not out.exists()
