"""trainables.progress: the training progress (bar on a terminal, plain lines elsewhere) and counted
work (dataset generation, downloads), driven by a fake clock; and `weakdis train` through a pipe."""
from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from trainables.progress import TrainProgress, WorkProgress, format_duration

ROOT = Path(__file__).resolve().parents[1]


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_format_duration():
    assert [format_duration(s) for s in (0, 59.6, 61, 3723, float("inf"))] == ["0:00", "1:00", "1:01", "1:02:03", "?"]


def test_plain_lines_every_interval_with_losses_rate_and_time_left():
    clock, stream = Clock(), io.StringIO()
    progress = TrainProgress(100, 32, stream=stream, interval=10.0, clock=clock)
    reads = []

    def losses():
        reads.append(clock.now)
        return {"loss_recon": 0.25, "loss_disc": 0.6931}

    for step in range(1, 101):
        clock.now += 0.5              # 0.5 s a step: 64 images/s
        progress.update(step, losses)
    lines = stream.getvalue().splitlines()
    # a line every 10 s (20 steps) after the first step, and one at the last step
    assert [line.split()[1] for line in lines] == ["21/100", "41/100", "61/100", "81/100", "100/100"]
    assert lines[0] == "step 21/100 (21%)  losses: recon 0.25, disc 0.6931  64 img/s  0:40 left"
    assert lines[-1].endswith("64 img/s  0:00 left")
    # losses are read at most once a second (a host sync on a GPU), not every step
    assert len(reads) == 50


def test_the_bar_on_a_terminal_and_evaluation_lines_above_it():
    clock, stream = Clock(), Terminal()
    progress = TrainProgress(40, 10, stream=stream, clock=clock)
    for step in range(1, 41):
        clock.now += 0.1
        progress.update(step, lambda: {"loss_ae": 0.5})
        if step == 20:
            progress.write("step 20/40  recon_error 0.01")
    progress.close()
    text = stream.getvalue()
    assert "\r" in text and "40/40" in text and "ae 0.5" in text and "img/s" in text
    assert "step 20/40  recon_error 0.01\n" in text


def test_a_resumed_run_counts_from_its_first_step_and_quiet_shows_nothing():
    clock, stream = Clock(), io.StringIO()
    progress = TrainProgress(100, 10, stream=stream, clock=clock)
    for step in range(51, 61):
        clock.now += 1.0
        progress.update(step)
    assert progress.images_per_second() == pytest.approx(10.0)
    assert progress.seconds_left() == pytest.approx(40.0)
    silent = TrainProgress(10, 1, stream=stream, enabled=False, clock=clock)
    before = stream.getvalue()
    for step in range(1, 11):
        silent.update(step)
    silent.write("x")
    assert stream.getvalue() == before


def test_work_progress_logs_lines_when_there_is_no_terminal(caplog):
    clock = Clock()
    work = WorkProgress("generating shapes3d", stream=io.StringIO(), interval=10.0, clock=clock)
    with caplog.at_level(logging.INFO, logger="trainables.progress"):
        work(0, 480_000)
        for done in range(4096, 480_001, 4096):
            clock.now += 1.0
            work(min(done, 480_000), 480_000)
        work(480_000, 480_000)           # a repeated final call does not repeat the last line
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0] == "generating shapes3d: 40,960/480,000 images (9%), 4,096 images/s, 1:47 left"
    assert messages[-1].startswith("generating shapes3d: 480,000/480,000 images (100%)")
    assert "done in 1:57" in messages[-1] and len(messages) == 12


def test_generation_inside_a_trial_reaches_stderr_through_logging(tmp_path):
    """What a Ray trial does: nothing configured logging, the data cache generates a file."""
    script = (
        "from trainables.data.generate import cached_file\n"
        "cached_file('dsprites', version='v2', max_images=2000, seed=0)\n"
    )
    env = {**os.environ, "WEAKDIS_DATA": str(tmp_path)}
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=ROOT,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    assert "is not in the cache; generating it once" in run.stderr
    assert "generating dsprites into" in run.stderr and "2,000/2,000 images (100%)" in run.stderr


def test_weakdis_train_through_a_pipe_prints_plain_lines(tmp_path):
    weakdis = Path(sys.executable).parent / "weakdis"
    out = tmp_path / "run"
    env = {**os.environ, "WEAKDIS_DATA": str(tmp_path / "data")}
    argv = [str(weakdis), "train", "--set", "model=betavae", "--set", "steps=20", "--set", "eval_every=10",
            "--set", "batch_size=8", "--set", "data_images=600", "--set", "eval_points=100", "--set",
            "device=cpu", "--set", "tau=0", "--out", str(out)]
    run = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert "\r" not in run.stdout and "\x1b" not in run.stdout
    assert lines[0].startswith("weakdis train: betavae on dsprites:v2, 20 steps")
    assert any(line.startswith("step 20/20 (100%)") and "img/s" in line for line in lines)
    evaluations = [line for line in lines if line.startswith("step ") and "recon_error" in line]
    assert [line.split()[1] for line in evaluations] == ["10/20", "20/20"]
    assert "generating dsprites" in run.stderr


def test_ensure_handler_respects_an_application_that_logs_info_itself():
    script = (
        "import logging, sys\n"
        "logging.basicConfig(level=logging.INFO, stream=sys.stdout, format='APP %(name)s %(message)s')\n"
        "from trainables.logs import ensure_handler\n"
        "ensure_handler()\n"
        "logging.getLogger('trainables.progress').info('hello')\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert run.stdout.strip() == "APP trainables.progress hello" and "hello" not in run.stderr
    # a root handler at WARNING (what a Ray worker may have) would drop the line: weakdis adds its own
    quiet_root = script.replace("level=logging.INFO", "level=logging.WARNING")
    run = subprocess.run([sys.executable, "-c", quiet_root], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert run.stderr.strip() == "hello" and run.stdout == ""
