"""The ``weakdis`` command line.

Each subcommand lives beside the code it drives and is imported only when it is the one that runs:
``weakdis --help`` imports neither torch nor Ray, and ``weakdis data`` / ``weakdis train`` never
import Ray. A subcommand module provides ``add_arguments(parser)``, ``run(args) -> int`` and may
provide ``EPILOG`` (examples shown at the end of its ``--help``).

Every subcommand takes ``-v/--verbose`` (debug logging) and ``-q/--quiet`` (warnings and errors
only: no progress bars or progress lines).

Errors the user can fix (``WeakdisError``, a missing file, a bad value) are printed on one
line as ``weakdis: error: ...`` with exit status 1; set ``WEAKDIS_DEBUG=1`` for the traceback.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Sequence

SUBCOMMANDS = {
    "train": ("trainables.train_cli", "run one trial locally, without Ray"),
    "sweep": ("search.sweep_cli", "run a hyperparameter sweep with Ray Tune and Optuna"),
    "analyze": ("analysis.cli", "write figures, tables, the Pareto frontier and a report for runs"),
    "data": ("trainables.data.cli", "generate, download and inspect the dSprites / Shapes3D files"),
}

NOT_AVAILABLE = 2


def _load(module_name: str):
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name == module_name:
            return None
        raise


def _installed_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("weakdis")
    except PackageNotFoundError:
        return "(not installed)"


EPILOG = """\
examples:
  weakdis sweep                                  the packaged quickstart sweep (a few minutes on a CPU)
  weakdis sweep --list                           the packaged sweep configs
  weakdis train --set model=absae --set steps=300
  weakdis analyze runs/quickstart-20261123-101500
  weakdis data generate shapes3d --out 3dshapes.h5

Run 'weakdis COMMAND --help' for a command's options, keys and examples.
"""


def add_logging_options(parser: argparse.ArgumentParser) -> None:
    """-v / -q on ``parser`` and on every subparser below it (the ``data`` actions)."""
    group = parser.add_argument_group("output")
    group.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS,
                       help="more detail: debug logging with times and module names")
    group.add_argument("-q", "--quiet", action="count", default=argparse.SUPPRESS,
                       help="only warnings and errors: no progress bar or progress lines (-qq: errors only)")
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                add_logging_options(child)


def selected_command(argv: Sequence[str]) -> str | None:
    """The subcommand named on the command line (the first word that is not an option)."""
    for token in argv:
        if token == "--":
            return None
        if not token.startswith("-"):
            return token if token in SUBCOMMANDS else None
    return None


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only ``command``'s module is imported and given its options (every command
    when ``command`` is ``"*"``)."""
    parser = argparse.ArgumentParser(
        prog="weakdis",
        description="Hyperparameter searches over weakly disentangled representation learning models.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"weakdis {_installed_version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="{train,sweep,analyze,data}")
    subparsers.required = True
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        module = _load(module_name) if command in (name, "*") else None
        sub = subparsers.add_parser(
            name, help=help_text, description=help_text,
            epilog=getattr(module, "EPILOG", None), formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        sub.set_defaults(_module=module, _command=name, _module_name=module_name)
        if module is not None:
            module.add_arguments(sub)
        add_logging_options(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(selected_command(argv))
    args = parser.parse_args(argv)
    module = args._module
    if module is None:
        print(f"weakdis: '{args._command}' is not yet available in this version", file=sys.stderr)
        return NOT_AVAILABLE
    from trainables.errors import WeakdisError
    from trainables.logs import configure

    configure(verbose=getattr(args, "verbose", 0), quiet=getattr(args, "quiet", 0))
    try:
        return int(module.run(args) or 0)
    except KeyboardInterrupt:
        print("weakdis: interrupted", file=sys.stderr)
        return 130
    except (WeakdisError, FileNotFoundError, IsADirectoryError, PermissionError, ValueError) as error:
        if os.environ.get("WEAKDIS_DEBUG"):
            raise
        message = " ".join(str(error).split()) or type(error).__name__
        print(f"weakdis: error: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
