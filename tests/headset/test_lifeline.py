"""No process outlives its parent: the monitor's headset child, and the helper every child uses."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time

import pytest
from _constants import REPO

from benchmarks._proc import alive, children
from headset import lifeline

LINUX = sys.platform.startswith("linux")
pytestmark = pytest.mark.skipif(not LINUX, reason="reads /proc")

#: Upper bound of every wait below (a slow machine; never reached when things work).
WAIT_S = 60.0


def _wait_for(predicate, what: str):
    deadline = time.monotonic() + WAIT_S
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.05)


def _monitor(tmp_path, *extra):
    """Start a real-time synthetic monitor; return it and its headset child, once started."""
    events = tmp_path / "ev.jsonl"
    cmd = [sys.executable, "-m", "staging.cli", "monitor", "--no-tui", "--speed", "1"]
    cmd += ["--duration", "20m", "--events", str(events), *extra]
    proc = subprocess.Popen(
        cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    # the events stream starts once the source described itself: the child is serving
    _wait_for(lambda: events.exists() and events.stat().st_size > 0 or proc.poll() is not None,
              "the monitor to start")  # fmt: skip
    assert proc.poll() is None, proc.communicate()
    kids = children(proc.pid)
    assert kids, "the monitor started no headset process"
    return proc, kids, events


def _cleanup(proc, kids):
    for pid in kids:  # first: a child left behind holds the pipes communicate() reads
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
    if proc.poll() is None:
        proc.kill()
    proc.communicate()


@pytest.mark.slow
def test_kill_9_of_the_monitor_ends_its_children(tmp_path):
    proc, kids, _ = _monitor(tmp_path)
    try:
        proc.kill()  # SIGKILL: no handler runs in the monitor
        proc.wait()
        _wait_for(lambda: not any(alive(p) for p in kids), "the children to end")
    finally:
        _cleanup(proc, kids)


@pytest.mark.slow
def test_the_headset_child_ends_on_sigterm(tmp_path):
    proc, kids, _ = _monitor(tmp_path)
    try:
        for pid in kids:
            os.kill(pid, signal.SIGTERM)
        _wait_for(lambda: not any(alive(p) for p in kids), "the children to end on SIGTERM")
        # the monitor notices and stops with one line, its files closed
        _, err = proc.communicate(timeout=WAIT_S)
        assert proc.returncode == 2 and "headset process ended" in err, err
    finally:
        _cleanup(proc, kids)


@pytest.mark.slow
def test_sigterm_of_the_monitor_still_finalises_and_ends_the_child(tmp_path):
    proc, kids, events = _monitor(tmp_path)
    try:
        proc.terminate()
        proc.communicate(timeout=WAIT_S)
        assert proc.returncode == 128 + signal.SIGTERM
        last = json.loads(events.read_text().splitlines()[-1])
        assert last["reason"] == "terminated"
        _wait_for(lambda: not any(alive(p) for p in kids), "the children to end")
    finally:
        _cleanup(proc, kids)


#: A parent started afresh (no threads of pytest's to fork with): it starts one child, prints
#: its pid and waits. ``watcher``: a forked Python child without the parent-death signal (only
#: its watcher thread); ``program``: a program run with subprocess (the signal outlives exec).
_MIDDLE = """
import multiprocessing as mp, os, subprocess, sys, time
from headset import lifeline

def child(parent_pid):
    lifeline._PRCTL = None
    lifeline.follow_parent(parent_pid)
    time.sleep(60)

if sys.argv[1] == "watcher":
    proc = mp.get_context("fork").Process(target=child, args=(os.getpid(),))
    proc.start()
else:
    cmd = [sys.executable, "-c", "import time; time.sleep(60)"]
    proc = subprocess.Popen(cmd, **lifeline.child_popen_kwargs())
print(proc.pid, flush=True)
time.sleep(60)
"""


@pytest.mark.parametrize("kind", ["watcher", "program"])
def test_orphans_end_without_the_parent_signal_or_after_exec(kind):
    middle = subprocess.Popen(
        [sys.executable, "-c", _MIDDLE, kind], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    pid = None
    try:
        pid = int(middle.stdout.readline())
        middle.kill()
        middle.wait()
        _wait_for(lambda: not alive(pid), "the orphan to end")
    finally:
        if middle.poll() is None:
            middle.kill()
        middle.communicate()
        if pid is not None and alive(pid):
            os.kill(pid, signal.SIGKILL)


def _sleeper(parent_pid, out):
    lifeline.follow_parent(parent_pid)
    try:
        out.send("ready")
        time.sleep(WAIT_S)
    finally:
        out.send("cleaned up")


def test_follow_parent_ends_cleanly_on_sigterm():
    ctx = mp.get_context("fork")
    a, b = ctx.Pipe()
    child = ctx.Process(target=_sleeper, args=(os.getpid(), b))
    child.start()
    assert a.poll(WAIT_S) and a.recv() == "ready"
    child.terminate()
    child.join(WAIT_S)
    assert child.exitcode == 128 + signal.SIGTERM
    assert a.recv() == "cleaned up"  # finally blocks ran


def test_a_child_whose_parent_already_ended_ends_at_once():
    ctx = mp.get_context("fork")
    a, b = ctx.Pipe()
    child = ctx.Process(target=_sleeper, args=(os.getpid() + 10**6, b))
    child.start()
    child.join(WAIT_S)
    assert child.exitcode == 128 + signal.SIGTERM and not a.poll()
