"""``whisper-exporters COMMAND ...``: the one command ``pip install`` gives.

Each subcommand is the command line of one package, imported only when it is called (so
``whisper-exporters serve`` does not import torch's exporters, and ``--help`` is instant).
The ``python -m`` forms keep working: this is only a front door to them. It lives in
``bench``, the top layer, because it reaches every package below.
"""

from __future__ import annotations

import importlib
import sys

#: subcommand -> (module with ``main(argv)``, arguments put before the user's, summary)
COMMANDS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "export": ("exporters.cli", ("whisper",), "export a Whisper checkpoint to an artifact "
               "(python -m exporters whisper)"),
    "verify": ("exporters.cli", ("verify",), "check an artifact's files against its manifest"),
    "targets": ("exporters.cli", ("targets",), "list the export targets"),
    "transcribe": ("runtimes.__main__", (), "transcribe audio files with an artifact "
                   "(python -m runtimes)"),
    "bench": ("bench.cli", (), "benchmark artifacts on speech clips (python -m bench)"),
    "compare": ("bench.compare_cli", (), "export every target and precision, benchmark and "
                "recommend (python -m bench.compare_cli)"),
    "serve": ("runtimes.serve.__main__", (), "serve an artifact over OpenAI's HTTP API "
              "(python -m runtimes.serve)"),
    "batch": ("runtimes.batch.__main__", (), "transcribe folders or manifests as a Ray Data "
              "job (python -m runtimes.batch)"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"  {name:<{width}}  {summary}" for name, (_, _, summary) in COMMANDS.items()]
    return ("usage: whisper-exporters COMMAND [ARGS...]   (COMMAND --help for its flags)\n\n"
            "commands:\n" + "\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(usage(), file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"error: unknown command {name!r}; one of: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    module, prefix, _ = COMMANDS[name]
    return importlib.import_module(module).main([*prefix, *rest])


if __name__ == "__main__":
    sys.exit(main())
