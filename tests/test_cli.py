"""The `weakdis` dispatcher and the README / CI wiring."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from search.cli import SUBCOMMANDS, main

ROOT = Path(__file__).resolve().parents[1]


def test_help_lists_every_subcommand(capsys):
    try:
        main(["--help"])
    except SystemExit as exit_:
        assert exit_.code == 0
    out = capsys.readouterr().out
    for name in SUBCOMMANDS:
        assert name in out


def test_version(capsys):
    from importlib.metadata import version

    try:
        main(["--version"])
    except SystemExit as exit_:
        assert exit_.code == 0
    assert capsys.readouterr().out.strip() == f"weakdis {version('weakdis')}"


def test_unknown_subcommand_is_a_usage_error():
    result = subprocess.run(
        [sys.executable, "-m", "search.cli", "frobnicate"], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "invalid choice" in result.stderr


def test_weakdis_error_is_one_line_without_traceback(monkeypatch, capsys):
    import types

    from trainables.errors import WeakdisError

    def run(args):
        raise WeakdisError("file 'x.npz': missing key 'imgs'")

    fake = types.SimpleNamespace(add_arguments=lambda parser: None, run=run)
    monkeypatch.setattr("search.cli._load", lambda name: fake)
    assert main(["data"]) == 1
    err = capsys.readouterr().err
    assert err.strip() == "weakdis: error: file 'x.npz': missing key 'imgs'"


def _block(marker: str) -> str:
    text = (ROOT / "README.md").read_text()
    match = re.search(rf"<!-- {marker} -->\s*```bash\n(.*?)\n```\s*<!-- /{marker} -->", text, re.S)
    assert match, f"README.md has no {marker} block"
    return match.group(1).strip()


def test_ci_runs_exactly_the_readme_test_command():
    command = _block("test-command")
    assert "pytest" in command
    extracted = subprocess.run(
        ["bash", "-c", "sed -n '/<!-- test-command -->/,/<!-- \\/test-command -->/p' README.md"
         " | sed -n '/^```bash$/,/^```$/p' | sed '1d;$d'"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.strip()
    assert extracted == command
    assert "README.md" in (ROOT / ".ci" / "run").read_text()


def test_quickstart_command_installs_and_runs_the_default_sweep():
    command = _block("quickstart-command")
    assert "pip install" in command
    assert command.split("&&")[-1].strip().startswith("weakdis sweep")
