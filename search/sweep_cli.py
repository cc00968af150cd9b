"""``weakdis sweep [CONFIG] [--address ADDR] [--storage URI] [--num-samples N] [--resume] [--name NAME]``."""
from __future__ import annotations

import argparse
import importlib.resources
from pathlib import Path

from search.schema import SweepConfig, load_sweep_config, parse_sweep_config
from trainables.errors import WeakdisError

DEFAULT_CONFIG = "quickstart.yaml"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "config", nargs="?", default=None, metavar="CONFIG",
        help="sweep config YAML: a path, or the name of a packaged config (quickstart, dsprites-fig5, "
             "shapes3d-fig5, dsprites-table1); default: the packaged quickstart",
    )
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
    return sorted(p.name for p in importlib.resources.files("search.configs").iterdir() if p.name.endswith(".yaml"))


def read_config(argument: str | None) -> SweepConfig:
    """A config path, or a packaged config by name (with or without .yaml)."""
    if argument is not None and Path(argument).exists():
        return load_sweep_config(argument)
    name = argument or DEFAULT_CONFIG
    if not name.endswith((".yaml", ".yml")):
        name += ".yaml"
    resource = importlib.resources.files("search.configs") / name
    if argument is not None and ("/" in argument or not resource.is_file()):
        raise WeakdisError(
            f"sweep config {argument!r} does not exist; expected a YAML file or one of the packaged "
            f"configs: {', '.join(packaged_configs())}"
        )
    import yaml

    try:
        data = yaml.safe_load(resource.read_text())
    except yaml.YAMLError as error:
        raise WeakdisError(f"packaged config {name}: not valid YAML: {' '.join(str(error).split())}") from None
    return parse_sweep_config(data, source=f"packaged config {name}", default_name=Path(name).stem)


def run(args: argparse.Namespace) -> int:
    """`weakdis sweep`: 0 when the sweep ran to its end, 130 after Ctrl-C (the results so far are
    written and the last line printed is the command that continues the run). OS-level failures
    and overflows become one-line errors naming the file or value."""
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
    config = read_config(args.config)
    return runner.run_sweep(config, address=args.address, storage=args.storage, name=args.name,
                            num_samples=args.num_samples)
