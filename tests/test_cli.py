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
        # its own line with a description (the "{train,sweep,...}" metavar alone would not do)
        assert re.search(rf"^\s+{name}\s+\S", out, re.M), name
        try:
            main([name, "--help"])
        except SystemExit as exit_:
            assert exit_.code == 0
        assert capsys.readouterr().out.startswith(f"usage: weakdis {name}"), name


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
    # .ci/run runs what .ci/readme-block prints; run that very script here
    extracted = subprocess.run([str(ROOT / ".ci" / "readme-block"), "test-command"],
                               cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    assert extracted == command
    assert "test_command=$(.ci/readme-block test-command)" in (ROOT / ".ci" / "run").read_text()


def test_quickstart_command_installs_and_runs_the_default_sweep():
    command = _block("quickstart-command")
    assert "pip install" in command
    assert command.split("&&")[-1].strip().startswith("weakdis sweep")


def test_top_level_help_imports_neither_torch_nor_ray():
    code = ("import sys\nfrom search.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "heavy = sorted(m for m in ('torch', 'ray', 'optuna', 'numpy', 'pandas') if m in sys.modules)\n"
            "print('HEAVY', heavy, file=sys.stderr)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert "HEAVY []" in result.stderr, result.stderr
    assert "examples:" in result.stdout and "weakdis sweep --list" in result.stdout


def _help(argv):
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        try:
            main([*argv, "--help"])
        except SystemExit as exit_:
            assert exit_.code == 0
    return buffer.getvalue()


def test_every_subcommand_takes_verbose_and_quiet_and_shows_examples():
    for argv in (["train"], ["sweep"], ["analyze"], ["data"], ["data", "generate"], ["data", "download"],
                 ["data", "info"]):
        text = _help(argv)
        assert "-v, --verbose" in text and "-q, --quiet" in text, argv
        assert "examples:" in text and f"weakdis {argv[0]}" in text.split("examples:")[1], argv


def test_quiet_and_verbose_set_the_log_level(monkeypatch):
    import logging
    import types

    levels = []
    fake = types.SimpleNamespace(add_arguments=lambda parser: None,
                                 run=lambda args: levels.append(logging.getLogger("trainables").level))
    monkeypatch.setattr("search.cli._load", lambda name: fake)
    for argv, level in ((["analyze"], logging.INFO), (["analyze", "-v"], logging.DEBUG),
                        (["analyze", "-q"], logging.WARNING), (["analyze", "-qq"], logging.ERROR)):
        assert main(argv) == 0
        assert levels[-1] == level, argv


def test_sweep_list_prints_one_line_per_packaged_sweep_config(capsys):
    from search.sweep_cli import packaged_configs

    assert main(["sweep", "--list"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[0] for line in lines] == [name[:-5] for name in packaged_configs()]
    quickstart = next(line for line in lines if line.startswith("quickstart"))
    assert "6 trials" in quickstart and "absae, betavae on dsprites:v2" in quickstart
    assert not any("train" in line.split()[0] for line in lines)


def test_ci_builds_its_own_environment_and_leaves_the_readme_one_alone():
    script = (ROOT / ".ci" / "run").read_text()
    assert ".ci/venv" in script
    assert not re.search(r"rm -rf [\"']?(\$root/)?\.venv", script)
    assert "apt-get install" in script and "chromium" in script and "WEAKDIS_REQUIRE_BROWSER=1" in script
