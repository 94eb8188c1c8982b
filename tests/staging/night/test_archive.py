"""``dreamnet score`` over an archive of nights on dask.distributed (staging.night.archive)."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from _constants import REPO
from _staging_sim import simulated, to_raw

from staging.cli import main
from staging.night.archive import COHORT_COLUMNS
from staging.night.stats import sleep_statistics

NIGHTS = ("a/n0", "a/n1", "b/n2", "b/n3")
#: Seconds to wait for a process to appear or to end (a bound on a hang, not a timing check).
WAIT_S = 60.0


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """Four 20-min simulated nights in two folders, as EDF."""
    import mne

    root = tmp_path_factory.mktemp("archive")
    for k, name in enumerate(NIGHTS):
        data, sf, names, types, _ = simulated(seed=93000 + k, n_epochs=40)
        path = root / f"{name}.edf"
        path.parent.mkdir(exist_ok=True)
        mne.export.export_raw(path, to_raw(data, sf, names, types), fmt="edf", verbose="error")
    return root


@pytest.fixture(scope="module")
def serial(archive, tmp_path_factory):
    """Each night scored alone, in this process (no dask): the reference bytes."""
    out = tmp_path_factory.mktemp("serial")
    ref = {}
    for name in NIGHTS:
        target = out / f"{name.replace('/', '_')}.csv"
        assert main(["score", str(archive / f"{name}.edf"), "--out", str(target)]) == 0
        ref[name] = target.read_bytes()
    return ref


@pytest.fixture(scope="module")
def cluster():
    """A local cluster of 2 worker processes started here: (its address, a client of it)."""
    from staging.night.archive import dask_client

    with dask_client(2, None) as client:
        yield client.scheduler.address, client


def _cohort(out: Path) -> list[dict]:
    with open(out / "cohort.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return rows


def _same_bytes(out: Path, serial: dict) -> None:
    for name in NIGHTS:
        assert (out / f"{name}.csv").read_bytes() == serial[name], name


def test_two_workers_give_the_serial_bytes_and_the_cohort_table(
    archive, serial, tmp_path, dreamnet
):
    out = tmp_path / "out"
    rc, stdout, err = dreamnet(["score", str(archive), "--out", str(out), "--jobs", "2"])
    assert rc == 0, err
    assert stdout.count("\n") == 1 and "4 nights: 4 scored, 0 skipped" in stdout
    _same_bytes(out, serial)
    rows = _cohort(out)
    assert tuple(rows[0]) == COHORT_COLUMNS
    assert [r["path"] for r in rows] == [str(archive / f"{n}.edf") for n in NIGHTS]
    for name, row in zip(NIGHTS, rows):
        src = archive / f"{name}.edf"
        assert row["status"] == "ok" and row["error"] == ""
        assert row["sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()
        assert row["model"] == "dreamnet_stager" and len(row["model_version"]) == 64
        assert row["channels"] == "eeg=EEG C4-M1; eog=EOG E1-M2+EOG E2-M2; emg=EMG chin"
        # the statistics are those of the serial hypnogram
        lines = serial[name].decode().splitlines()[1:]
        codes = {"W": 0, "N1": 1, "N2": 2, "N3": 3, "R": 4, "?": -1}
        stages = np.array([codes[line.split(",")[2]] for line in lines])
        st = sleep_statistics(stages)
        assert int(row["epochs"]) == len(stages) == 40
        assert float(row["tst_min"]) == pytest.approx(st.tst_min)
        assert float(row["N2_min"]) == pytest.approx(st.stage_min["N2"])
        assert int(row["stage_shifts"]) == np.count_nonzero(np.diff(stages[stages >= 0]))
        conf = np.array([float(line.split(",")[3]) for line in lines])
        assert float(row["mean_confidence"]) == pytest.approx(conf.mean(), abs=1e-4)
        rec = json.loads((out / f"{name}.json").read_text())
        assert rec["input_sha256"] == row["sha256"]
        assert rec["model_version"] == row["model_version"]
        assert rec["stats"]["se_pct"] == pytest.approx(round(st.se_pct, 2))
    leftovers = [p for p in out.rglob("*") if p.name.endswith(".partial")]
    assert leftovers == []


def test_scheduler_run_and_resume(archive, serial, cluster, tmp_path, dreamnet):
    address, _ = cluster
    out = tmp_path / "out"
    argv = ["score", str(archive), "--out", str(out), "--scheduler", address]
    rc, stdout, err = dreamnet(argv)
    assert rc == 0, err
    _same_bytes(out, serial)
    files = sorted(p for p in out.rglob("*") if p.is_file() and p.name != "cohort.csv")
    before = {p: p.stat().st_mtime_ns for p in files}
    # one night lost its outputs: the re-run scores it alone and skips the others
    (out / "b/n2.csv").unlink()
    (out / "b/n2.json").unlink()
    rc, stdout, err = dreamnet(argv)
    assert rc == 0, err
    assert "4 nights: 1 scored, 3 skipped (done before), 0 failed" in stdout
    for p, mtime in before.items():
        if p.parent.name != "b" or p.stem != "n2":
            assert p.stat().st_mtime_ns == mtime, p
    _same_bytes(out, serial)
    assert [r["status"] for r in _cohort(out)] == ["ok"] * 4
    # an edited hypnogram is refused (nothing written), then replaced with --force
    edited = out / "a/n1.csv"
    edited.write_text("hand-corrected\n")
    rc, stdout, err = dreamnet(argv)
    assert rc == 2 and err.count("\n") == 1
    assert "a/n1.csv" in err and "differs" in err and "--force" in err
    assert edited.read_text() == "hand-corrected\n"
    rc, stdout, err = dreamnet([*argv, "--force"])
    assert rc == 0, err
    assert "4 nights: 4 scored, 0 skipped" in stdout
    _same_bytes(out, serial)
    # another model is another version: the outputs differ
    rc, _, err = dreamnet([*argv, "--model", "simulated-only"])
    assert rc == 2 and "another model" in err


def test_a_bad_file_is_an_error_row_and_the_others_go_on(archive, cluster, tmp_path, dreamnet):
    address, _ = cluster
    src = tmp_path / "mixed"
    src.mkdir()
    shutil.copy(archive / "a/n0.edf", src / "good.edf")
    (src / "junk.edf").write_text("this is not an EDF file")
    (src / "cut.edf").write_bytes((archive / "a/n1.edf").read_bytes()[:300])
    out = tmp_path / "out"
    argv = ["score", str(src), "--out", str(out), "--scheduler", address]
    rc, stdout, err = dreamnet(argv)
    assert rc == 1
    assert "3 nights: 1 scored, 0 skipped (done before), 2 failed" in stdout
    rows = {Path(r["path"]).name: r for r in _cohort(out)}
    assert list(rows) == ["cut.edf", "good.edf", "junk.edf"]
    assert rows["good.edf"]["status"] == "ok"
    assert rows["cut.edf"]["status"] == "error" and "truncated header" in rows["cut.edf"]["error"]
    assert rows["junk.edf"]["status"] == "error" and rows["junk.edf"]["error"]
    assert rows["junk.edf"]["sha256"] == hashlib.sha256(b"this is not an EDF file").hexdigest()
    assert sorted(p.name for p in out.iterdir()) == ["cohort.csv", "good.csv", "good.json"]
    lines = err.splitlines()
    assert len(lines) == 2 and all(line.startswith("dreamnet: error: ") for line in lines)
    # the failed nights are tried again on a re-run; the good one is skipped
    rc, stdout, _ = dreamnet(argv)
    assert rc == 1 and "1 skipped" in stdout and "2 failed" in stdout


def test_a_killed_worker_loses_no_night(archive, serial, cluster, tmp_path, dreamnet):
    address, client = cluster
    before = set(client.run(os.getpid).values())
    killed = []

    def kill_a_busy_worker():
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            busy = [w for w, keys in client.processing().items() if keys]
            if busy:
                pid = client.run(os.getpid, workers=busy[:1])[busy[0]]
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                return
            time.sleep(0.005)

    killer = threading.Thread(target=kill_a_busy_worker)
    killer.start()
    out = tmp_path / "out"
    argv = ["score", str(archive), "--out", str(out), "--scheduler", address]
    rc, stdout, err = dreamnet(argv)
    killer.join()
    assert rc == 0, err
    assert len(killed) == 1 and killed[0] in before
    assert "4 nights: 4 scored" in stdout
    _same_bytes(out, serial)
    assert all(r["status"] == "ok" for r in _cohort(out))
    assert [p for p in out.rglob("*.partial")] == []
    client.wait_for_workers(2, timeout=WAIT_S)  # the nanny started a new one
    assert killed[0] not in set(client.run(os.getpid).values())


def test_report_per_night(archive, cluster, tmp_path, dreamnet):
    address, _ = cluster
    out = tmp_path / "out"
    night = str(archive / "a/n0.edf")
    argv = ["score", night, "--out", str(out), "--report", "--scheduler", address]
    rc, stdout, err = dreamnet(argv)
    assert rc == 0, err
    assert (out / "n0.report/report.html").is_file()
    summary = json.loads((out / "n0.report/report.json").read_text())
    assert summary["stats"]["tst_min"] > 0
    assert json.loads((out / "n0.json").read_text())["report"] == "n0.report"
    rc, stdout, _ = dreamnet(argv)
    assert rc == 0 and "1 skipped" in stdout


def test_a_night_whose_report_fails_writes_nothing(archive, cluster, tmp_path, dreamnet):
    address, _ = cluster
    out = tmp_path / "out"
    out.mkdir()
    (out / "n0.report.partial").write_text("a file in the way of the report's folder")
    night = str(archive / "a/n0.edf")
    argv = ["score", night, "--out", str(out), "--report", "--scheduler", address]
    rc, stdout, err = dreamnet(argv)
    assert rc == 1 and "1 failed" in stdout
    (row,) = _cohort(out)
    assert row["status"] == "error" and row["error"].startswith("report: ")
    assert sorted(p.name for p in out.iterdir()) == ["cohort.csv", "n0.report.partial"]


def test_workers_end_with_the_run(archive, tmp_path):
    """``kill -9`` of a running ``dreamnet score --jobs 2``: its worker processes end too."""
    import psutil

    cmd = [sys.executable, "-m", "staging.cli", "score", str(archive)]
    cmd += ["--out", str(tmp_path / "out"), "--jobs", "2"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        parent = psutil.Process(proc.pid)
        workers: list = []
        deadline = time.monotonic() + WAIT_S
        while len(workers) < 2 and time.monotonic() < deadline and proc.poll() is None:
            kids = parent.children(recursive=True)
            workers = [k for k in kids if "spawn_main" in " ".join(_cmdline(k))]
            time.sleep(0.02)
        assert len(workers) == 2, "the workers did not start"
        descendants = parent.children(recursive=True)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        _, alive = psutil.wait_procs(descendants, timeout=WAIT_S)
        assert alive == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _cmdline(p) -> list[str]:
    import psutil

    try:
        return p.cmdline()
    except psutil.Error:  # ended meanwhile
        return []


def test_bad_usage_is_one_line_and_exit_2(archive, tmp_path, dreamnet):
    def err(argv):
        rc, _, text = dreamnet(argv)
        assert rc == 2, text
        assert text.count("\n") == 1 and "Traceback" not in text
        return text

    empty = tmp_path / "empty"
    empty.mkdir()
    out = str(tmp_path / "out")
    assert "no .edf or .bdf file" in err(["score", str(empty), "--out", out])
    assert "no file matches" in err(["score", str(tmp_path / "*.edf"), "--out", out])
    assert "no such file" in err(["score", str(archive), str(tmp_path / "x.edf"), "--out", out])
    assert "not one CSV" in err(["score", str(archive), "--out", str(tmp_path / "c.csv")])
    assert "--jobs" in err(["score", str(archive), "--out", out, "--jobs", "0"])
    both = ["--jobs", "2", "--scheduler", "tcp://127.0.0.1:8786"]
    assert "not allowed with" in err(["score", str(archive), "--out", out, *both])
    assert "tcp://HOST" in err(["score", str(archive), "--out", out, "--scheduler", "host"])
    twins = tmp_path / "twins"
    twins.mkdir()
    for suffix in (".edf", ".bdf"):
        (twins / f"n{suffix}").write_bytes(b"x")
    assert "both give" in err(["score", str(twins), "--out", out])
    assert not Path(out).exists()


def test_local_cluster_settings(monkeypatch):
    """No fixed port (8787 may be taken: a warning); workers without dask's malloc setting.

    dask's MALLOC_TRIM_THRESHOLD_ turns off glibc's adaptive mmap threshold: 2.4x the CPU.
    """
    import socket

    from staging.night.archive import dask_client

    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)  # a cluster started before
    with socket.socket() as blocker:
        try:
            blocker.bind(("0.0.0.0", 8787))
            blocker.listen()
        except OSError:  # another program holds it: the same situation
            pass
        with dask_client(1, None) as client:
            values = client.run(os.environ.get, "MALLOC_TRIM_THRESHOLD_")
            threads = client.run(os.environ.get, "OMP_NUM_THREADS")
    assert list(values.values()) == [None]
    assert list(threads.values()) == ["1"]  # dask's other settings stay
