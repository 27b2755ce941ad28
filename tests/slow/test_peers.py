"""Peer rows (``bench.peers``) on real tiny.en: each tool, prepared as its users prepare it
(optimum's own export, openai-whisper's layout, the toolkit's ggml file for whisper.cpp),
transcribes two real clips, and JFK again in its own timestamped long-form mode (the
settings that mode passes checked); ``python -m bench --peers`` puts a peer beside a toolkit
artifact, marked as a peer and with its export time; whisper.cpp's batched figure is marked
sequential."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bench import peers
from bench.worker import open_system
from runtimes.base import DecodingOptions, RuntimeOptions

JFK = ("and so my fellow americans ask not what your country can do for you ask what you can "
       "do for your country")


@pytest.fixture(scope="module")
def two_clips(jfk, en_clips):
    from runtimes.audio.files import load_audio
    from tests.conftest import SPEECH

    return [load_audio(jfk), load_audio(SPEECH / en_clips[0]["path"])], en_clips[0]["reference"]


@pytest.mark.parametrize("peer", peers.PEERS)
def test_each_peer_transcribes_real_speech(peer, two_clips, tmp_path):
    from bench.metrics import error_rates, normalizer
    from exporters.sources import resolve

    if not peers._installed(peer):
        pytest.skip(f"{peer}: {peers.PACKAGES[peer][1]} is not installed")
    specs, seconds, notes = peers.prepare((peer,), resolve("bundled:tiny.en"), {}, tmp_path)
    assert notes == [] and len(specs) == 1 and specs[0].peer
    assert (specs[0].name in seconds) == (peer != "transformers-pipeline")  # it exports nothing
    system = open_system(specs[0], RuntimeOptions(threads=2), DecodingOptions())
    assert _long_form_settings(peer, system) == (False, False)  # text only, no prompt
    audio, reference = two_clips
    (jfk_text, _), (text, _) = system.transcribe(audio, 2)
    assert normalizer("en")(jfk_text) == JFK
    # tiny.en itself gets 4 of its 28 words wrong (14%), in every runtime
    assert error_rates([reference], [text], ["en"]).wer <= 0.2
    # --long-form sequential: the tool's own timestamped mode, prompted with the previous
    # text where the tool has one, and it still transcribes
    system = open_system(specs[0], RuntimeOptions(threads=2),
                         DecodingOptions(long_form="sequential"))
    prompted = peer in ("whisper.cpp", "openai-whisper")
    assert _long_form_settings(peer, system) == (True, prompted)
    assert normalizer("en")(system.transcribe(audio[:1], 1)[0][0]) == JFK


def _long_form_settings(peer: str, system) -> tuple[bool, bool]:
    """(timestamps, previous-text prompt) as the tool was given them: whisper.cpp's own
    params object, the others' call arguments."""
    s = system.settings
    if peer == "whisper.cpp":
        params = system._model.get_params()
        assert (params["no_timestamps"], params["no_context"]) == (s["no_timestamps"],
                                                                    s["no_context"])
        return not s["no_timestamps"], not s["no_context"]
    if peer == "openai-whisper":
        return not s["without_timestamps"], s["condition_on_previous_text"]
    return s["return_timestamps"], False  # the pipeline has no previous-text prompt


def test_an_unknown_peer_is_refused_and_a_missing_one_is_left_out_with_the_reason(
        monkeypatch, tmp_path):
    from runtimes.errors import OptionError

    with pytest.raises(OptionError, match="--peers 'whisperx' is not one of: whisper.cpp"):
        peers.check_peers(("whisperx",))
    assert peers.check_peers(("all",)) == peers.PEERS
    monkeypatch.setitem(peers.PACKAGES, "openai-whisper", ("no_such_module_x", "the 'peers' "
                                                          "extra (openai-whisper)"))
    specs, _, notes = peers.prepare(("openai-whisper",), None, {}, tmp_path)
    assert specs == [] and notes == ["peer openai-whisper skipped: the 'peers' extra "
                                     "(openai-whisper) is not installed"]


def test_bench_puts_peers_beside_an_artifact(tmp_path, speech_rows):
    """One ggml artifact (whisper.cpp runtime, batch 2 sequential) and two peers on two
    clips, each row in its own process, through the command line."""
    pytest.importorskip("_pywhispercpp", reason="the 'ggml' extra is not installed")
    from exporters.api import export
    from exporters.options import ExportOptions
    from tests.conftest import MANIFEST

    artifact = export("bundled:tiny.en", ExportOptions("ggml", "q8_0", threads=2),
                      tmp_path / "ggml", log=lambda _: None).path
    out = tmp_path / "report"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", str(artifact), "--manifest", str(MANIFEST), "--subset",
         "en", "--limit", "2", "--batch-sizes", "2", "--threads", "2", "--pytorch", "none",
         "--faster-whisper", "none", "--faster-whisper-batched", "none", "--peers",
         "whisper.cpp", "transformers-pipeline",
         "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = {r["name"]: r for r in map(json.loads, (out / "results.jsonl").read_text().splitlines())}
    assert set(rows) == {"ggml q8_0", "peer whisper.cpp q8_0", "peer transformers-pipeline fp32"}
    assert not rows["ggml q8_0"]["peer"] and rows["ggml q8_0"]["sequential_batches"]
    assert rows["peer whisper.cpp q8_0"]["peer"] and rows["peer whisper.cpp q8_0"]["wer"] < 0.25
    called = rows["peer whisper.cpp q8_0"]["notes"][0]  # the default mode: text only
    assert called.startswith("called with ") and "no_timestamps=True" in called
    assert "print_progress" not in called
    assert rows["peer transformers-pipeline fp32"]["rtfx_batched"]["2"] > 0
    report = (out / "report.md").read_text()
    assert " seq |" in report and "ran each batch's windows one after another" in report
    assert "peer whisper.cpp q8_0" in report
