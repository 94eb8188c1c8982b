"""Tests of ``dreamnet simulate`` (staging/cli/simulate.py)."""

import os
import subprocess
import sys
from pathlib import Path

import edfio
import mne
import numpy as np
import pytest
from _constants import REPO

from headset.replay import Replay
from staging.cli import main


def test_help_lists_profiles_and_faults(capsys):
    with pytest.raises(SystemExit) as info:
        main(["simulate", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for profile in ("healthy", "nightmare-prone", "insomnia", "child"):
        assert f"\n  {profile} " in out
    for fault in ("mains", "movement", "pops", "leadoff", "saturation", "drift", "loss"):
        assert f"\n  {fault} " in out
    assert "--duration" in out and "--out" in out and "reduced" in out


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--duration=-3h"], "duration must be positive"),
        (["--duration", "-5m"], "duration must be positive"),
        (["--duration", "0s"], "positive"),
        (["--duration", "49h"], "at most 48h"),
        (["--duration", "soon"], "invalid duration"),
        (["--profile", "sleepy"], "invalid choice"),
        (["--seed", "-1"], "non-negative"),
        (["--faults", "lightning=3"], "unknown fault"),
        (
            ["--faults", "disconnect=1e9"],
            "'disconnect' must be a non-negative number within 0-100, got 1000000000.0",
        ),
        (
            ["--faults", "movement=inf"],
            "'movement' must be a non-negative number within 0-120, got inf",
        ),
        (["--faults", "pops=nan"], "'pops' must be a non-negative number within 0-360, got nan"),
        (["--montage", "EEG Cz"], "Cz"),
        (["--sfreq", "-5"], "sfreq"),
        (["--out", "/nonexistent-dir/x/night.edf"], "cannot write"),
        (["--out", "."], "directory"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(dreamnet, tmp_path, argv, words):
    # later occurrences of an option override the valid defaults in front
    args = ["simulate", "--out", str(tmp_path / "n.edf"), "--duration", "30s", *argv]
    code, out, err = dreamnet(args)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert words in lines[0]
    assert "Traceback" not in err


def test_output_under_a_file_exits_2(dreamnet, tmp_path):
    (tmp_path / "plain").write_text("x")
    code, _, err = dreamnet(
        ["simulate", "--duration", "30s", "--out", str(tmp_path / "plain" / "x.edf")]
    )
    assert code == 2 and "cannot write" in err and len(err.strip().splitlines()) == 1


def test_unwritable_file_exits_2(dreamnet, tmp_path, monkeypatch):
    # a read-only directory does not stop root, so the OS answer is simulated for everyone
    d = tmp_path / "ro"
    d.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if p == d else real_access(p, mode))
    code, _, err = dreamnet(["simulate", "--duration", "30s", "--out", str(d / "x.edf")])
    assert code == 2 and "permission denied" in err and len(err.strip().splitlines()) == 1
    assert not (d / "x.edf").exists()


def test_output_that_is_a_directory_exits_2(dreamnet, tmp_path):
    code, _, err = dreamnet(["simulate", "--duration", "30s", "--out", str(tmp_path)])
    assert code == 2 and "is a directory" in err and len(err.strip().splitlines()) == 1


def test_short_night_is_written_with_ground_truth(dreamnet, tmp_path):
    out = tmp_path / "night.edf"
    code, stdout, err = dreamnet(
        [
            "simulate",
            "--duration",
            "3m",
            "--seed",
            "7",
            "--montage",
            "reduced",
            "--sfreq",
            "100",
            "--out",
            str(out),
        ]
    )
    assert code == 0, err
    assert err == ""  # no progress bar when stderr is not a terminal
    assert str(out) in stdout and "stages (min): W" in stdout and "events:" in stdout
    raw = mne.io.read_raw_edf(out, preload=True, verbose="error")
    assert raw.ch_names == ["EEG C4-M1", "EOG E1-M2", "EMG chin"]
    assert raw.info["sfreq"] == 100.0 and raw.n_times == 3 * 60 * 100
    stages = [d for d in raw.annotations.description if d.startswith("Sleep stage ")]
    assert len(stages) >= 6
    # physical units: microvolts of plausible amplitude (the replay checks them)
    rp = Replay(out)
    assert rp.units == ("uV",) * 3
    eeg_sd = rp.read_all().data[0].std()
    assert 1 < eeg_sd < 500
    # every ground-truth annotation is in the file, exactly (edfio keeps full precision)
    edf = edfio.read_edf(out)
    assert all(a.text for a in edf.annotations)


def test_same_arguments_same_bytes(tmp_path):
    from headset.simulate import simulate_to_edf

    kw = dict(duration_s=60.0, seed=3, montage=("EEG C4-M1", "EMG chin"), sfreq=128.0)
    a = simulate_to_edf(tmp_path / "a.edf", **kw)
    simulate_to_edf(tmp_path / "b.edf", **kw)
    assert (tmp_path / "a.edf").read_bytes() == (tmp_path / "b.edf").read_bytes()
    # Another chunking stores annotations in other records (each goes into the record being
    # written when it arrives), but the signals and the set of annotations are the same.
    simulate_to_edf(tmp_path / "c.edf", chunk_s=7.0, **kw)
    ea, ec = edfio.read_edf(tmp_path / "a.edf"), edfio.read_edf(tmp_path / "c.edf")
    for sa, sc in zip(ea.signals, ec.signals):
        np.testing.assert_array_equal(sa.digital, sc.digital)
    got = sorted((x.onset, x.duration or 0.0, x.text) for x in ea.annotations)
    assert got == sorted((x.onset, x.duration or 0.0, x.text) for x in ec.annotations)
    want = sorted((x.onset, x.duration, x.description) for x in a["annotations"])
    assert got == want
    assert a["hypnogram"].dtype == np.int8


def test_progress_bar_on_a_terminal(tmp_path):
    import pexpect

    out = tmp_path / "tty.edf"
    exe = Path(sys.executable).parent / "dreamnet"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "staging.cli"]
    child = pexpect.spawn(
        cmd[0],
        [*cmd[1:], "simulate", "--duration", "2m", "--montage", "reduced", "--out", str(out)],
        cwd=str(REPO),
        timeout=120,
        encoding="utf-8",
        dimensions=(24, 120),
    )
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    assert "simulating healthy" in child.before  # the bar was drawn
    assert "stages (min)" in child.before
    assert out.exists()


def test_module_runs_as_a_script(tmp_path):
    out = tmp_path / "s.edf"
    res = subprocess.run(
        [sys.executable, "-m", "staging.cli", "simulate", "--duration", "30s", "--quiet"]
        + ["--montage", "reduced", "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout == "" and out.stat().st_size > 0


def test_packet_faults_go_through_the_device_link(dreamnet, tmp_path):
    out = tmp_path / "lossy.edf"
    code, stdout, err = dreamnet(
        [
            "simulate",
            "--duration",
            "1m",
            "--montage",
            "reduced",
            "--faults",
            "loss=0.02",
            "--seed",
            "5",
            "--out",
            str(out),
        ]
    )
    assert code == 0, err
    assert "Gap" in stdout
    rp = Replay(out)
    gaps = [a for a in rp.annotations if a.description == "Gap"]
    assert gaps
    flags = rp.read_all().flags
    g = gaps[0]
    s0, s1 = round(g.onset * rp.sfreq), round((g.onset + g.duration) * rp.sfreq)
    assert (flags[:, s0:s1] & 1).all()


def test_existing_output_is_refused_unless_force(dreamnet, tmp_path):
    out = tmp_path / "keep.edf"
    out.write_bytes(b"a night worth keeping")
    args = ["simulate", "--duration", "30s", "--montage", "reduced", "--quiet", "--out", str(out)]
    code, _, err = dreamnet(args)
    assert code == 2 and err.count("\n") == 1
    assert "--out" in err and "already exists" in err and "--force" in err
    assert out.read_bytes() == b"a night worth keeping"
    code, _, err = dreamnet([*args, "--force"])
    assert code == 0, err
    assert Replay(out).duration == 30.0


def test_output_linked_to_an_existing_file_is_refused(dreamnet, tmp_path):
    keep = tmp_path / "keep.edf"
    keep.write_bytes(b"x" * 100)
    (tmp_path / "link.edf").symlink_to(keep)
    link = str(tmp_path / "link.edf")
    code, _, err = dreamnet(["simulate", "--duration", "30s", "--out", link])
    assert code == 2 and "already exists" in err
    assert keep.read_bytes() == b"x" * 100


@pytest.mark.parametrize("failure", [RuntimeError("disk on fire"), KeyboardInterrupt()])
def test_failed_run_leaves_no_output(capsys, tmp_path, monkeypatch, failure):
    """The night is written as NAME.partial and renamed at the end; a failure removes it."""
    from headset.recorder import Recorder

    out = tmp_path / "night.edf"
    seen = []
    real_write = Recorder.write

    def write(self, chunk):
        seen.append(self.path)
        real_write(self, chunk)
        if len(seen) == 2:
            raise failure

    monkeypatch.setattr(Recorder, "write", write)
    argv = ["simulate", "--duration", "3m", "--montage", "reduced", "--quiet", "--out", str(out)]
    if isinstance(failure, KeyboardInterrupt):
        assert main(argv) == 130  # Ctrl-C: "interrupted", no traceback
    else:
        with pytest.raises(RuntimeError):
            main(argv)
    assert seen[0] == tmp_path / "night.edf.partial"
    assert list(tmp_path.iterdir()) == []
