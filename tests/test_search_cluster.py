"""cluster.yaml under Ray's own schema, and a sweep on a real two-node Ray cluster on this machine."""
from __future__ import annotations

import copy
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def ray_schema() -> dict:
    import ray.autoscaler

    return json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())


@pytest.fixture(scope="module")
def cluster_config() -> dict:
    return yaml.safe_load((ROOT / "cluster.yaml").read_text())


def test_cluster_yaml_passes_rays_schema_and_launcher_checks(cluster_config):
    from ray.autoscaler._private.util import prepare_config, validate_config

    jsonschema.validate(cluster_config, ray_schema())
    prepared = prepare_config(copy.deepcopy(cluster_config))  # what `ray up` does before validating
    validate_config(prepared)
    head = prepared["head_node_type"]
    workers = {name: spec for name, spec in prepared["available_node_types"].items() if name != head}
    assert prepared["available_node_types"][head]["node_config"]["InstanceType"].startswith("m5")  # CPU head
    assert any(spec["max_workers"] > spec.get("min_workers", 0) for spec in workers.values())   # autoscaling
    assert all(spec["node_config"]["InstanceType"].startswith(("g5", "p4", "p5")) for spec in workers.values())
    setup = "\n".join(prepared["worker_setup_commands"])
    assert "pip install -e ~/weakdis" in setup and "ray[tune" in setup
    assert prepared["file_mounts"]["~/weakdis"] == "."


@pytest.mark.parametrize(
    ("path", "key"),
    [((), "setup_comands"), (("available_node_types", "gpu_worker"), "max_worker"), (("auth",), "ssh_usr")],
)
def test_rays_schema_rejects_a_misspelt_key(cluster_config, path, key):
    broken = copy.deepcopy(cluster_config)
    node = broken
    for part in path:
        node = node[part]
    node[key] = 1
    with pytest.raises(jsonschema.ValidationError, match=f"'{key}' was unexpected"):
        jsonschema.validate(broken, ray_schema())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


DRIVER = textwrap.dedent("""
    import json, sys
    import ray
    from search.runner import run_sweep
    from search.schema import parse_sweep_config

    BARRIER = sys.argv[2] + "-barrier"

    def trainable(config):
        import os, time, uuid
        import ray
        from ray import tune
        node = ray.get_runtime_context().get_node_id()
        # The first two trials wait for each other: with one CPU per node, two trials can only run at
        # once when the second node takes one, so the sweep cannot quietly run everything on the head.
        os.makedirs(BARRIER, exist_ok=True)
        open(os.path.join(BARRIER, uuid.uuid4().hex), "w").close()
        deadline = time.time() + 90
        while len(os.listdir(BARRIER)) < 2 and time.time() < deadline:
            time.sleep(0.2)
        from trainables.tune import _trial_dir
        with open(os.path.join(_trial_dir(), "node.txt"), "w") as handle:   # a file of the trial's own
            handle.write(node)
        for step in (1, 2):
            time.sleep(0.5)
            tune.report({"step": step, "dci": config["beta"] / 10, "recon_error": 1.0 / step, "node": node})

    ray.init(address=sys.argv[1], log_to_driver=False)
    print("NODES " + json.dumps(sorted(n["NodeID"] for n in ray.nodes() if n["Alive"])), flush=True)
    config = parse_sweep_config({
        "dataset": "dsprites:v2", "fixed": {"steps": 2, "eval_every": 1},
        "models": {"absae": {"space": {"beta": {"uniform": [1.0, 9.0]}}},
                   "betavae": {"space": {"beta": {"uniform": [1.0, 9.0]}}}},
        "objectives": {"dci": "max", "recon_error": "min"}, "num_samples": 4, "resources": {"cpus": 1},
    }, source="two-nodes.yaml")
    run_sweep(config, address=sys.argv[1], storage=sys.argv[2], name="two-nodes", function=trainable)
    ray.shutdown()
""")


import contextlib


@contextlib.contextmanager
def two_node_cluster(tmp_path: Path, env: dict):
    """A head and a worker node (one CPU each) on this machine; yields the head's address."""
    ray_cli = str(Path(sys.executable).parent / "ray")
    port = free_port()
    address = f"127.0.0.1:{port}"
    common = ["--block", "--num-cpus=1", "--num-gpus=0", "--object-store-memory=100000000",
              "--node-ip-address=127.0.0.1"]
    nodes = []
    # Ray's socket paths live under --temp-dir and must stay under 107 bytes: pytest's tmp_path is too deep.
    short_temp = Path(tempfile.mkdtemp(prefix="wdray-", dir="/tmp"))

    def start(arguments: list[str], log: str) -> None:
        nodes.append(subprocess.Popen([ray_cli, "start", *arguments, *common], env=env, start_new_session=True,
                                      stdout=open(tmp_path / log, "w"), stderr=subprocess.STDOUT))

    try:
        start(["--head", f"--port={port}", "--include-dashboard=false", "--disable-usage-stats",
               f"--temp-dir={short_temp / 'head'}"], "head.log")
        deadline = time.time() + 60
        while subprocess.run([ray_cli, "status", f"--address={address}"], env=env, capture_output=True).returncode:
            assert time.time() < deadline, (tmp_path / "head.log").read_text()[-2000:]
            assert nodes[0].poll() is None, (tmp_path / "head.log").read_text()[-2000:]
            time.sleep(1)
        start([f"--address={address}", f"--temp-dir={short_temp / 'worker'}"], "worker.log")
        # wait until both nodes have registered
        waiter = textwrap.dedent(f"""
            import time, ray
            ray.init(address={address!r}, log_to_driver=False)
            deadline = time.time() + 60
            while len([n for n in ray.nodes() if n["Alive"]]) < 2 and time.time() < deadline:
                time.sleep(0.5)
            ray.shutdown()
        """)
        subprocess.run([sys.executable, "-c", waiter], env=env, check=True, timeout=120, capture_output=True)
        yield address
    finally:
        for node in reversed(nodes):
            if node.poll() is None:
                os.killpg(node.pid, signal.SIGTERM)
        time.sleep(1)
        for node in reversed(nodes):
            try:
                os.killpg(node.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            node.wait()
        shutil.rmtree(short_temp, ignore_errors=True)


CLUSTER_ENV = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}


def sweep_on_two_nodes(tmp_path, driver: str, timeout: int) -> subprocess.CompletedProcess:
    """Start the two-node cluster, run ``driver`` (address and storage as arguments) against it."""
    env = {**os.environ, **CLUSTER_ENV}
    with two_node_cluster(tmp_path, env) as address:
        script = tmp_path / "driver.py"
        script.write_text(driver)
        sweep = subprocess.run([sys.executable, str(script), address, str(tmp_path / "runs")], env=env,
                               capture_output=True, text=True, timeout=timeout)
    assert sweep.returncode == 0, sweep.stdout[-3000:] + sweep.stderr[-3000:]
    return sweep


@pytest.mark.ray
def test_a_sweep_runs_across_two_ray_nodes(tmp_path):
    sweep = sweep_on_two_nodes(tmp_path, DRIVER, timeout=240)

    node_ids = json.loads(next(line for line in sweep.stdout.splitlines() if line.startswith("NODES "))[6:])
    assert len(node_ids) == 2
    run_dir = tmp_path / "runs" / "two-nodes"
    used = set()
    for result in run_dir.glob("*/result.json"):
        nodes = {json.loads(line)["node"] for line in result.read_text().splitlines() if line.strip()}
        used |= nodes
        # the file the trial wrote on its node (the second node's in its own Ray temp dir) is in storage
        assert {(result.parent / "node.txt").read_text()} == nodes
    assert used == set(node_ids)
    import pandas as pd

    results = pd.read_parquet(run_dir / "results.parquet")
    assert len(results) == 4 and (results["status"] == "finished").all()
    assert f"Results: {run_dir}" in sweep.stdout


WORKERS_DRIVER = textwrap.dedent("""
    import json, sys
    import ray
    from search.runner import run_sweep
    from search.schema import parse_sweep_config

    ray.init(address=sys.argv[1], log_to_driver=False)
    config = parse_sweep_config({
        "dataset": "dsprites:v2",
        "fixed": {"steps": 4, "eval_every": 2, "batch_size": 8, "data_images": 200, "tau": 0, "eval_points": 60,
                  "latent_dim": 4, "device": "cpu"},
        "models": {"betavae": {"space": {"beta": {"uniform": [1.0, 2.0]}}}},
        "objectives": {"dci": "max", "recon_error": "min"}, "num_samples": 1,
        # 0.1 CPU for the trial's driver + 2 workers of 0.6 CPU: more than one 1-CPU node holds
        "resources": {"cpus": 0.6, "workers": 2},
    }, source="two-node-workers.yaml")
    run_sweep(config, address=sys.argv[1], storage=sys.argv[2], name="workers")
    ray.shutdown()
""")


@pytest.mark.ray
@pytest.mark.slow
def test_a_multi_worker_trial_spans_two_nodes_and_checkpoints_into_the_sweep_storage(tmp_path):
    """python -m pytest -m slow tests/test_search_cluster.py -k multi_worker -q"""
    sweep = sweep_on_two_nodes(tmp_path, WORKERS_DRIVER, timeout=800)
    import pandas as pd

    run_dir = tmp_path / "runs" / "workers"
    results = pd.read_parquet(run_dir / "results.parquet")
    assert len(results) == 1 and results["status"].tolist() == ["finished"], results[["status", "error"]]
    assert results["step"].tolist() == [4]
    # the TorchTrainer's own checkpoints live in the run on the sweep's storage, not in node-local /tmp
    inner = list((run_dir / ".ray-train").glob("train-*/checkpoint_*"))
    assert inner, sorted(str(p) for p in run_dir.rglob("*"))[:50]
    # rank 0's own files reach the trial's directory in storage
    trial_dir = Path(results["trial_dir"][0])
    assert list(pd.read_csv(trial_dir / "history.csv")["step"]) == [2, 4]
    assert [entry["world_size"] for entry in json.loads((trial_dir / "environment.json").read_text())] == [2]
    assert json.loads((trial_dir / "metrics.json").read_text())["step"] == 4
