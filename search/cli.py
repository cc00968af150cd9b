"""The ``weakdis`` command line.

Each subcommand lives beside the code it drives and is imported only when used, so that
``weakdis data`` and ``weakdis train`` never import Ray. A subcommand module provides
``add_arguments(parser)`` and ``run(args) -> int``.

Errors the user can fix (``WeakdisError``, a missing file, a bad value) are printed on one
line as ``weakdis: error: ...`` with exit status 1; set ``WEAKDIS_DEBUG=1`` for the traceback.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Sequence

from trainables.errors import WeakdisError

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="weakdis",
        description="Hyperparameter searches over weakly disentangled representation learning models.",
    )
    parser.add_argument("--version", action="version", version=f"weakdis {_installed_version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="{train,sweep,analyze,data}")
    subparsers.required = True
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        module = _load(module_name)
        sub.set_defaults(_module=module, _command=name)
        if module is not None:
            module.add_arguments(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    module = args._module
    if module is None:
        print(f"weakdis: '{args._command}' is not yet available in this version", file=sys.stderr)
        return NOT_AVAILABLE
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
