"""``weakdis sweep [CONFIG] [--set KEY=VALUE ...] [--address ADDR] [--storage URI] [--num-samples N]
[--resume] [--name NAME]`` and ``weakdis sweep --list``."""
from __future__ import annotations

import argparse
import importlib.resources
import re
from pathlib import Path

from search.schema import SweepConfig, load_sweep_config, sweep_config_from_text
from trainables.errors import WeakdisError

DEFAULT_CONFIG = "quickstart.yaml"

EPILOG = """\
examples:
  weakdis sweep                                    the packaged quickstart (6 trials, a few minutes on a CPU)
  weakdis sweep --list                             the packaged sweep configs, one line each
  weakdis sweep dsprites-fig5 --address auto --storage s3://bucket/weakdis    on a Ray cluster
  weakdis sweep my-sweep.yaml --num-samples 20 --name try1
  weakdis sweep dsprites-fig5-cpu --set seeds=[1,2] --set dataset=dsprites:v3    other seeds, another version
  weakdis sweep my-sweep.yaml --resume             continue the newest run of my-sweep after Ctrl-C
  optuna-dashboard sqlite:///runs/try1/optuna.db   the sweep's Optuna study (docs/search.md)
  tensorboard --logdir runs/try1                   Ray Tune's TensorBoard files of every trial
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "config", nargs="?", default=None, metavar="CONFIG",
        help="sweep config YAML: a path, or the name of a packaged config (see --list); "
             "default: the packaged quickstart",
    )
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override one key of CONFIG: a dotted path (seeds, dataset, fixed.steps, "
                             "models.absae.fixed.beta) and a YAML value; repeat for more")
    parser.add_argument("--list", action="store_true", dest="list_configs",
                        help="list the packaged sweep configs, one line each, and exit")
    parser.add_argument("--address", default=None,
                        help="Ray address to connect to (e.g. 'auto' on a cluster); default: start Ray locally")
    parser.add_argument("--storage", default=None,
                        help="where runs go: a local path, s3://bucket/path or gs://bucket/path "
                             "(default: the config's storage, ./runs)")
    parser.add_argument("--num-samples", type=int, default=None, dest="num_samples",
                        help="configurations to try (overrides num_samples; each runs once per seed)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the interrupted sweep --name (default: the newest run of CONFIG in storage)")
    parser.add_argument("--name", default=None,
                        help="run name, the directory under storage (default: <config name>-<timestamp>)")


def packaged_configs() -> list[str]:
    """File names of the packaged sweep configs (configs/*.yaml; train configs live in configs/train/)."""
    return sorted(p.name for p in importlib.resources.files("search.configs").iterdir()
                  if p.name.endswith(".yaml") and p.is_file())


def _summary_of_comment(text: str) -> str:
    """The first sentence of a config's leading comment, up to its first colon or full stop."""
    lines = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("#").strip())
    first = " ".join(lines)
    match = re.match(r"(.+?)(?::\s|\.\s|\.$|$)", first)
    return match.group(1).strip() if match else ""


def list_configs() -> list[str]:
    """One line per packaged sweep config: name, trials, models, dataset versions, what it is."""
    from search.space import total_trials

    rows = []
    for file_name in packaged_configs():
        text = (importlib.resources.files("search.configs") / file_name).read_text()
        name = Path(file_name).stem
        config = sweep_config_from_text(text, source=f"packaged config {file_name}", default_name=name)
        models = ", ".join(f.model for f in config.models)
        rows.append((name, f"{total_trials(config)} trials", f"{models} on {', '.join(config.datasets)}",
                     _summary_of_comment(text)))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return [f"{a:<{widths[0]}}  {b:>{widths[1]}}  {c:<{widths[2]}}  {d}".rstrip() for a, b, c, d in rows]


def read_config(argument: str | None, overrides: list[str] | tuple[str, ...] = ()) -> SweepConfig:
    """A config path, or a packaged config by name (with or without .yaml), with ``--set`` overrides."""
    if argument is not None and Path(argument).exists():
        return load_sweep_config(argument, overrides)
    name = argument or DEFAULT_CONFIG
    if not name.endswith((".yaml", ".yml")):
        name += ".yaml"
    resource = importlib.resources.files("search.configs") / name
    if argument is not None and ("/" in argument or not resource.is_file()):
        from trainables.train_cli import packaged_train_configs

        stem = Path(name).stem
        for candidate in (stem, stem.removeprefix("train-")):
            if "/" not in argument and candidate in packaged_train_configs():
                raise WeakdisError(f"{argument!r} is a train config (one trial), not a sweep config; "
                                   f"run it with: weakdis train {candidate}")
        raise WeakdisError(
            f"sweep config {argument!r} does not exist; expected a YAML file or one of the packaged "
            f"configs: {', '.join(packaged_configs())}"
        )
    return sweep_config_from_text(resource.read_text(), source=f"packaged config {name}",
                                  default_name=Path(name).stem, overrides=overrides)


def run(args: argparse.Namespace) -> int:
    """`weakdis sweep`: 0 when the sweep ran to its end, 130 after Ctrl-C (the results so far are
    written and the last line printed is the command that continues the run). OS-level failures
    and overflows become one-line errors naming the file or value."""
    if args.list_configs:
        print("\n".join(list_configs()))
        return 0
    from trainables.train_cli import os_error_message

    try:
        outcome = _run(args)
    except OverflowError as error:
        raise WeakdisError(f"a sweep config value is out of range ({error}); expected finite numbers") from None
    except OSError as error:
        raise WeakdisError(os_error_message(error)) from None
    if outcome is not None and outcome.interrupted:
        return 130
    return 0


def _run(args: argparse.Namespace):
    from search import runner

    if args.name is not None:
        runner.check_run_name(args.name)
    if args.resume:
        if args.overrides:
            raise WeakdisError("--set cannot change a sweep being resumed (its sweep.yaml is what it runs); "
                               "resume it as it was started, or start a new sweep with --set")
        if args.num_samples is not None:
            raise WeakdisError("--num-samples cannot change a sweep being resumed; resume it as it was started")
        if args.name:
            storage = args.storage
            if storage is None:
                storage = read_config(args.config).storage if args.config else "./runs"
            run_uri = runner.join_uri(runner.resolve_storage(storage), args.name)
        else:
            config = read_config(args.config)
            storage = runner.resolve_storage(args.storage or config.storage)
            if runner.is_remote(storage):
                raise WeakdisError("--resume with remote storage needs --name")
            run_uri = runner.join_uri(storage, runner.latest_run(storage, config.name))
        return runner.resume_sweep(run_uri, address=args.address)
    config = read_config(args.config, args.overrides)
    return runner.run_sweep(config, address=args.address, storage=args.storage, name=args.name,
                            num_samples=args.num_samples)
