"""The one installed command, ``whisper-exporters COMMAND``: each subcommand reaches its
package's command line, and mistakes get one line and exit 2."""

import subprocess
import sys

import pytest

from bench.commands import COMMANDS, main


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_subcommand_prints_its_help(name, capsys):
    with pytest.raises(SystemExit) as done:
        main([name, "--help"])
    assert done.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_no_command_or_an_unknown_one_is_one_line_and_exit_2(capsys):
    assert main([]) == 2
    assert "usage: whisper-exporters COMMAND" in capsys.readouterr().err
    assert main(["transcibe", "a.wav"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown command 'transcibe'; one of: export" in err
    assert main(["--help"]) == 0 and "transcribe" in capsys.readouterr().out


def test_the_comparison_script_is_the_bench_packages_command():
    """scripts/compare_runtimes.py is a shim over bench.compare_cli (pip installs the latter)."""
    out = subprocess.run([sys.executable, "scripts/compare_runtimes.py", "--help"],
                         capture_output=True, text=True, check=True).stdout
    assert out.startswith("usage: whisper-exporters compare")


def test_shared_flags_have_one_spelling_across_commands():
    """Issue 34: output was -o/--output in export but --out elsewhere, subsets were --subset
    in one command and --subsets in another. Every command now takes -o/--output (--out
    still works) and --subset."""
    import argparse

    from bench.cli import build_parser as bench
    from bench.compare_cli import build_parser as compare
    from runtimes.batch.__main__ import build_parser as batch

    for parser in (bench(), compare(), batch()):
        names = {s for a in parser._actions for s in a.option_strings}
        assert {"-o", "--output", "--out", "--subset"} <= names, parser.prog
    exporter = argparse.ArgumentParser()
    from exporters.cli import _whisper_parser
    _whisper_parser(exporter.add_subparsers())
    assert {"-o", "--output"} <= {s for a in exporter._subparsers._group_actions[0]
                                  .choices["whisper"]._actions for s in a.option_strings}


def test_the_runtime_flags_are_one_group_in_transcribe_serve_and_batch():
    """Issue 34: the server declared its runtime flags again (without --provider and
    --cache-dir, and with other help). Now each of these commands takes the group from
    runtimes.cli: same names, defaults and help."""
    from runtimes.__main__ import build_parser as transcribe
    from runtimes.batch.__main__ import build_parser as batch
    from runtimes.serve.__main__ import build_parser as serve

    shared = ("--device", "--precision", "--threads", "--provider", "--cache-dir",
              "--trust-torchscript", "--expect-digest", "--skip-checksums", "--beam-size")
    seen = []
    for parser in (transcribe(), serve(), batch()):
        actions = {s: a for a in parser._actions for s in a.option_strings}
        seen.append({flag: (actions[flag].default, actions[flag].help) for flag in shared})
    assert seen[0] == seen[1] == seen[2]
    assert all(help_ for _, help_ in seen[0].values())  # every one says what it does


#: Flags two commands take with another meaning, each with the reason (everything else
#: shared must have one default and one help).
MEANS_OTHER_THINGS = {
    "--model": "export: the checkpoint to convert; bench: the baseline (artifacts must match "
               "it); compare: the checkpoint every row is exported from",
    "--output": "an artifact directory, a report directory or a job's output directory",
    "--out": "the same as --output (kept as its alias)",
    "--subset": "bench measures one subset; compare makes a table per subset; batch filters",
    "--threads": "export: threads of the parity check only",
    "--word-timestamps": "export: add the alignment graph; transcribe and batch: decode words",
    "--compress": "export: the steps of one model; compare: recipes, each adding rows",
    "--distill": "export: the audio to fine-tune on; compare: for the recipes ending +distill",
}


def _parsers() -> dict:
    """Every console command's argument parser, by subcommand name."""
    import argparse

    from bench.cli import build_parser as bench
    from bench.compare_cli import build_parser as compare
    from exporters.cli import build_parser as exporters
    from runtimes.__main__ import build_parser as transcribe
    from runtimes.batch.__main__ import build_parser as batch
    from runtimes.serve.__main__ import build_parser as serve

    sub = next(a for a in exporters()._actions if isinstance(a, argparse._SubParsersAction))
    return {"export": sub.choices["whisper"], "transcribe": transcribe(), "bench": bench(),
            "compare": compare(), "serve": serve(), "batch": batch()}


def test_every_flag_shared_by_two_commands_has_one_default_and_one_help():
    """Issue 34: the same flag had other defaults and help in different commands
    (--faster-whisper-batched: none in bench, int8 in compare; --beam-size, --device
    without help). A flag two commands share now has one default and one help, except
    where it means another thing (MEANS_OTHER_THINGS, each with its reason)."""
    import argparse

    seen: dict[str, dict[str, tuple]] = {}
    for name, parser in _parsers().items():
        for action in parser._actions:
            for flag in action.option_strings:
                if flag.startswith("--") and flag != "--help":
                    seen.setdefault(flag, {})[name] = (repr(action.default), action.help)
    differing = {flag: sorted(by) for flag, by in seen.items()
                 if len(set(by.values())) > 1 and flag not in MEANS_OTHER_THINGS}
    assert differing == {}
    assert all(help_ for by in seen.values() for _, help_ in by.values()
               if help_ is not argparse.SUPPRESS), "a flag without help"


PRECISION_FLAGS = ("--precision", "--quantization", "--pytorch")


def test_every_precision_flag_lists_the_one_set_of_names():
    """Issue 34: precision was spelled fp32, float32 and f32, and --precision listed no
    values. Every flag that takes a precision names the toolkit's four, in its help."""
    found = []
    for name, parser in _parsers().items():
        for action in parser._actions:
            if set(action.option_strings) & set(PRECISION_FLAGS):
                found.append(name)
                words = set(action.help.replace(",", " ").replace(";", " ").split())
                assert {"fp32", "fp16", "bf16", "int8"} <= words, (name, action.help)
    assert {"export", "transcribe", "bench", "serve", "batch"} <= set(found)


@pytest.mark.parametrize("spelling, name", [("float32", "fp32"), ("f32", "fp32"),
                                            ("float16", "fp16"), ("f16", "fp16"),
                                            ("bfloat16", "bf16"), ("int8", "int8"),
                                            ("int8_float32", "int8_float32")])
def test_every_spelling_of_a_precision_means_the_toolkits_name(spelling, name):
    from bench.options import BenchOptions
    from exporters.options import ExportOptions
    from runtimes.base import RuntimeOptions

    assert RuntimeOptions(precision=spelling).precision == name
    assert ExportOptions("onnx", spelling).precision == name
    if name in ("fp32", "fp16", "bf16", "int8"):
        assert BenchOptions("m.tsv", pytorch=(spelling,)).pytorch == (name,)


@pytest.mark.parametrize("target, spelling, written", [
    ("ggml", "float16", "f16"), ("ggml", "fp16", "f16"), ("ggml", "f16", "f16"),
    ("onnx", "float32", "fp32"), ("ctranslate2", "fp32", "float32"),
    ("ctranslate2", "bfloat16", "bfloat16"), ("openvino", "f32", "fp32")])
def test_a_target_writes_its_own_spelling_of_the_name_asked_for(target, spelling, written):
    """Artifacts keep their format's own name on disk (a ggml file type is f16, a
    CTranslate2 compute type float32); the name asked for may be any spelling."""
    from exporters import registry
    from exporters.options import ExportOptions

    options = ExportOptions(target, spelling)
    assert registry.get(target).precision(options.precision, "cpu") == written
