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
