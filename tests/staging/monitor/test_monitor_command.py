"""`dreamnet monitor` headless: determinism, the event stream against the recording, bad sources."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _constants import REPO

from staging.cli import main
from staging.monitor.events import read_events

HEADLESS = ["monitor", "--no-tui", "--speed", "max", "--duration", "20m", "--seed", "3"]
CONCLUSIONS = ("Scored stage", "Detected arousal", "Nightmare alert", "Intervention", "Note:")


def _annotations(edf):
    import mne

    raw = mne.io.read_raw_edf(edf, preload=False, verbose="error")
    anns = [
        (round(float(o), 3), round(float(d), 3), str(t))
        for o, d, t in zip(raw.annotations.onset, raw.annotations.duration,
                           raw.annotations.description)
    ]  # fmt: skip
    return raw, anns


def _check_stream_matches_recording(events, edf, duration_s):
    raw, anns = _annotations(edf)
    assert raw.n_times / raw.info["sfreq"] == pytest.approx(duration_s)
    have = {(o, t) for o, _, t in anns}
    named = [e for e in events if "annotation" in e]
    for e in named:  # everything the stream says it wrote is in the file, at the same time
        assert (round(e["onset"], 3), e["annotation"]) in have, e
    # and every conclusion in the file is in the stream
    said = {(round(e["onset"], 3), e["annotation"]) for e in named}
    for o, _, t in anns:
        if t.startswith(CONCLUSIONS):
            assert (o, t) in said, (o, t)
    # times never go backwards; stages one per epoch
    ts = [e["t"] for e in events]
    assert ts == sorted(ts)
    stages = [e for e in events if e["type"] == "stage"]
    assert [e["epoch"] for e in stages] == list(range(int(duration_s // 30)))
    assert len([a for a in anns if a[2].startswith("Scored stage")]) == len(stages)
    for e in stages:  # "?" (no usable EEG) has confidence 0
        best = max(e["probs"].values()) if e["code"] >= 0 else 0.0
        assert e["confidence"] == pytest.approx(best, abs=1e-4)


def test_headless_night_is_deterministic_and_matches_recording(tmp_path):
    a_ev, a_edf = tmp_path / "a.jsonl", tmp_path / "a.edf"
    b_ev, b_edf = tmp_path / "b.jsonl", tmp_path / "b.edf"
    # one run in a fresh process, one in this one: same bytes
    proc = subprocess.run(
        [sys.executable, "-m", "staging.cli", *HEADLESS, "--events", str(a_ev),
         "--record", str(a_edf)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "recording" in proc.stderr and proc.stdout == ""
    assert main([*HEADLESS, "--events", str(b_ev), "--record", str(b_edf)]) == 0
    assert a_ev.read_bytes() == b_ev.read_bytes()
    assert a_edf.read_bytes() == b_edf.read_bytes()
    events = read_events(a_ev)
    assert events[0]["type"] == "session_start" and events[0]["seed"] == 3
    assert events[-1]["type"] == "session_end" and events[-1]["reason"] == "duration"
    assert not any(k in json.dumps(events) for k in ("wall", "clock_time", "timestamp"))
    _check_stream_matches_recording(events, a_edf, 1200.0)


def test_drill_with_faults_closes_the_loop(tmp_path):
    """The practice night with packet loss, a disconnect and lead-off: alerts, cues, gaps."""
    ev, edf = tmp_path / "d.jsonl", tmp_path / "d.edf"
    prof = tmp_path / "sleeper.json"
    rc = main([
        "monitor", "--source", "drill", "--no-tui", "--speed", "max", "--seed", "5",
        "--faults", "loss=0.01,corrupt=0.001,disconnect=1,leadoff=1",
        "--events", str(ev), "--record", str(edf), "--sleeper", str(prof),
        "--report", str(tmp_path / "report"),
    ])  # fmt: skip
    assert rc == 0
    assert (tmp_path / "report" / "report.html").stat().st_size > 1000
    summary = json.loads((tmp_path / "report" / "report.json").read_text())
    assert summary["stats"]["n_nightmare_alerts"] >= 1
    events = read_events(ev)
    types = {e["type"] for e in events}
    assert {"stage", "gap", "lead_off", "reconnect", "nightmare_alert", "intervention"} <= types
    sent = [e for e in events if e["type"] == "intervention" and e["status"] == "sent"]
    assert sent and all(e["stage"] in ("N1", "N2", "R") for e in sent)
    for e in sent:  # each cue waited out the grace period after its proposal
        prop = [p for p in events if p["type"] == "intervention" and p["status"] == "proposed"
                and p["t"] <= e["t"] and p["kind"] == e["kind"]]  # fmt: skip
        assert e["t"] - prop[-1]["t"] >= 10.0
    _check_stream_matches_recording(events, edf, 1200.0)
    _, anns = _annotations(edf)
    texts = [t for _, _, t in anns]
    assert "Nightmare" in texts and any(t.startswith("Cue: ") for t in texts)  # ground truth
    assert "Gap" in texts and "Connection lost" in texts
    profile = json.loads(prof.read_text())
    assert profile["nights"] == 1 and profile["format"] == "dreamnet-sleeper-profile"


def _one_line_error(capsys, argv):
    rc = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    return rc, err


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    "source, needle",
    [
        ("missing.edf", "no such file"),
        ("tcp://localhost", "expected tcp://HOST:PORT"),
        ("udp://x:1", "unknown source"),
        ("lsl:", "expected lsl:NAME"),
        ("notes.txt", "notes.txt"),
    ],
)
def test_bad_source_exit_2_one_line(tmp_path, capsys, monkeypatch, source, needle):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("not an EDF file\n" * 30)
    rc, err = _one_line_error(capsys, ["monitor", "--no-tui", "--source", source])
    assert rc == 2 and len(err) == 1 and needle in err[0], err


def test_unreachable_tcp_and_bad_options(capsys, tmp_path):
    port = _free_port()
    rc, err = _one_line_error(
        capsys, ["monitor", "--no-tui", "--source", f"tcp://127.0.0.1:{port}"]
    )
    assert rc == 2 and len(err) == 1 and "cannot" in err[0], err
    for argv, needle in [
        (["--speed", "0"], "speed"),
        (["--duration", "-3h"], "duration must be positive"),
        (["--duration", "-5m"], "duration must be positive"),
        (["--duration", "49h"], "at most 48h"),
        (["--faults", "disconnect=1e9"], "'disconnect' must be a non-negative number within 0-100"),
        (["--key", "/nonexistent.key"], "--key /nonexistent.key"),
        (["--report", "/proc/x"], "--report /proc/x"),
        (["--profile", "grumpy"], "grumpy"),
        (["--faults", "loss=2"], "loss"),
        (["--record", str(tmp_path / "no" / "x.edf")], "does not exist"),
        (["--record", str(tmp_path / "x.csv")], ".edf"),
        (["--events", "-"], "--no-tui"),
        (["--grace", "-1"], "grace"),
    ]:
        extra = [] if "--events" in argv else ["--no-tui"]
        rc, err = _one_line_error(capsys, ["monitor", *extra, *argv])
        assert rc == 2 and len(err) == 1 and needle in err[0], (argv, err)


def test_tcp_headset_wrong_key_refused_right_key_streams(tmp_path, capsys):
    from headset.device import Device
    from headset.transport import TcpServer

    key = bytes(range(32))
    dev = Device.from_profile("healthy", 1, 90.0, key=key)
    srv = TcpServer(dev, port=0, speed="max", idle_timeout=30)
    srv.start_thread()
    url = f"tcp://127.0.0.1:{srv.port}"
    try:
        rc, err = _one_line_error(
            capsys, ["monitor", "--no-tui", "--source", url, "--key", bytes(32).hex()]
        )
        assert rc == 2 and len(err) == 1 and "refused" in err[0] and "--key" in err[0], err
        keyfile = tmp_path / "pair.key"
        keyfile.write_text(key.hex() + "\n")
        ev = tmp_path / "t.jsonl"
        rc = main(["monitor", "--no-tui", "--source", url, "--key", str(keyfile),
                   "--events", str(ev)])  # fmt: skip
        assert rc == 0
        events = read_events(ev)
        assert events[-1]["reason"] == "end" and events[-1]["duration_s"] == 90.0
        assert [e["epoch"] for e in events if e["type"] == "stage"] == [0, 1, 2]
    finally:
        srv.stop()


def test_report_without_record_keeps_recording_in_report_dir(tmp_path, capsys):
    out = tmp_path / "morning"
    rc = main(["monitor", "--no-tui", "--speed", "max", "--source", "drill", "--duration", "3m",
               "--report", str(out)])  # fmt: skip
    assert rc == 0
    assert {"recording.edf", "events.jsonl", "report.html", "report.json"} <= {
        p.name for p in out.iterdir()
    }
    assert "report.html" in capsys.readouterr().err


def test_events_to_stdout(capsys):
    rc = main(["monitor", "--no-tui", "--speed", "max", "--source", "drill", "--duration", "90s",
               "--events", "-"])  # fmt: skip
    out, err = capsys.readouterr()
    assert rc == 0
    lines = [json.loads(x) for x in out.splitlines()]
    assert lines[0]["type"] == "session_start" and lines[-1]["type"] == "session_end"
    assert "dreamnet monitor:" in err  # the summary goes to stderr, never into the stream
    assert np.isclose(lines[-1]["duration_s"], 90.0)


def test_lsl_stream_is_monitored(tmp_path, capsys, make_sleeper):
    import os
    import threading
    import time

    from staging.monitor.sources import _quiet_liblsl

    _quiet_liblsl()
    from headset.transport import LslOutlet

    name = f"dreamnet-test-{os.getpid()}"
    sl = make_sleeper(1, duration_s=150.0)
    outlet = LslOutlet(name, sl.ch_names, sl.ch_types, sl.sfreq)
    stop = threading.Event()

    def push():  # 15x real time, one-second chunks, once the monitor listens
        end = time.monotonic() + 30
        while not outlet.have_consumers() and time.monotonic() < end and not stop.is_set():
            time.sleep(0.05)
        t0, k = time.monotonic(), 0
        while not sl.done and not stop.is_set():
            outlet.push(sl.read(256))
            k += 1
            time.sleep(max(0.0, t0 + k / 15 - time.monotonic()))

    th = threading.Thread(target=push, daemon=True)
    th.start()
    ev = tmp_path / "lsl.jsonl"
    try:
        rc = main(["monitor", "--no-tui", "--source", f"lsl:{name}", "--duration", "60s",
                   "--events", str(ev)])  # fmt: skip
    finally:
        stop.set()
        th.join(5)
    assert rc == 0
    events = read_events(ev)
    assert events[0]["source"] == f"lsl:{name}"
    assert [e["epoch"] for e in events if e["type"] == "stage"] == [0, 1]
    assert events[-1]["reason"] == "duration"
    capsys.readouterr()
    rc, err = _one_line_error(capsys, ["monitor", "--no-tui", "--source", "lsl:no-such-stream"])
    assert rc == 2 and len(err) == 1 and "no-such-stream" in err[0], err


DRILL = ["monitor", "--no-tui", "--speed", "max", "--source", "drill", "--duration", "90s"]


@pytest.fixture(scope="module")
def short_edf(tmp_path_factory):
    from headset.simulate import simulate_to_edf
    from staging.cli.simulate import REDUCED_MONTAGE

    path = tmp_path_factory.mktemp("src") / "keep2.edf"
    simulate_to_edf(path, duration_s=120.0, seed=2, montage=REDUCED_MONTAGE, sfreq=128.0)
    return path


def test_existing_outputs_are_refused_unless_force(tmp_path, capsys):
    keep = tmp_path / "keep.edf"
    keep.write_bytes(b"a 9.4 MB night")
    ev = tmp_path / "keep.jsonl"
    ev.write_text("{}\n")
    report = tmp_path / "morning"
    report.mkdir()
    (report / "report.html").write_text("yesterday")
    for argv, needle in [
        (["--record", str(keep)], f"--record {keep}: already exists"),
        (["--events", str(ev)], f"--events {ev}: already exists"),
        (["--report", str(report)], f"--report {report / 'report.html'}: already exists"),
    ]:
        rc, err = _one_line_error(capsys, [*DRILL, *argv])
        assert rc == 2 and len(err) == 1 and needle in err[0] and "--force" in err[0], err
    assert keep.read_bytes() == b"a 9.4 MB night" and ev.read_text() == "{}\n"
    assert (report / "report.html").read_text() == "yesterday"
    assert main([*DRILL, "--record", str(keep), "--events", str(ev), "--force"]) == 0
    assert keep.stat().st_size > 1000 and read_events(ev)[-1]["type"] == "session_end"


@pytest.mark.parametrize("how", ["same", "symlink", "hardlink", "relative"])
def test_an_output_that_is_the_source_is_refused(short_edf, tmp_path, capsys, monkeypatch, how):
    """--source keep2.edf --record keep2.edf truncated the source (Bus error, exit 135)."""
    before = short_edf.read_bytes()
    out = tmp_path / "out.edf"
    if how == "same":
        out = short_edf
    elif how == "symlink":
        out.symlink_to(short_edf)
    elif how == "hardlink":
        out.hardlink_to(short_edf)
    else:
        monkeypatch.chdir(short_edf.parent)
        out = Path("sub") / ".." / short_edf.name
        (short_edf.parent / "sub").mkdir(exist_ok=True)
    base = ["monitor", "--no-tui", "--speed", "max", "--source", str(short_edf), "--force"]
    for flag in ("--record", "--events"):
        rc, err = _one_line_error(capsys, [*base, flag, str(out)])
        assert rc == 2 and len(err) == 1, err
        assert f"{flag} {out}: is the input --source" in err[0], err
    assert short_edf.read_bytes() == before


def test_monitor_messages_name_the_problem(tmp_path, capsys):
    import edfio

    sig = edfio.EdfSignal(np.random.default_rng(0).normal(0, 20, 128 * 90), 128, label="Temp")
    nochan = tmp_path / "nochan.edf"
    edfio.Edf([sig]).write(nochan)
    rc, err = _one_line_error(capsys, ["monitor", "--no-tui", "--source", str(nochan)])
    assert rc == 2 and len(err) == 1, err
    assert f"--source {nochan}: no EEG channel" in err[0] and "nightmare marker" not in err[0]
    evil = tmp_path / "evil\x1b[31m.edf"
    rc, err = _one_line_error(capsys, ["monitor", "--no-tui", "--record", str(evil), "--key",
                                       str(tmp_path / "no.key")])  # fmt: skip
    assert rc == 2 and len(err) == 1 and "--key" in err[0], err
    keep = tmp_path / "evil\nname.edf"
    keep.write_text("x")
    rc, err = _one_line_error(capsys, [*DRILL, "--record", str(keep)])
    assert rc == 2 and len(err) == 1 and "evil\\nname.edf: already exists" in err[0], err


def test_truncated_source_refused_or_its_complete_records_replayed(short_edf, tmp_path, capsys):
    from headset.edf.header import read_header

    h = read_header(short_edf)
    cut = tmp_path / "cut.edf"
    cut.write_bytes(short_edf.read_bytes()[: h.header_bytes + 61 * h.record_bytes + 5])
    base = ["monitor", "--no-tui", "--speed", "max", "--source", str(cut)]
    rc, err = _one_line_error(capsys, base)
    assert rc == 2 and len(err) == 1, err
    assert "61 of the 120 data records" in err[0] and "--allow-truncated" in err[0]
    ev = tmp_path / "cut.jsonl"
    assert main([*base, "--allow-truncated", "--events", str(ev)]) == 0
    err = capsys.readouterr().err
    assert "the 61 complete data records of the 120 declared are used" in err
    events = read_events(ev)
    assert events[-1]["duration_s"] == 61.0
    assert any("61 complete data records" in e.get("text", "") for e in events)


def test_not_recording_is_said_plainly(capsys):
    assert main(DRILL) == 0
    err = capsys.readouterr().err
    assert "not recording" in err and "typed notes are lost" in err


def test_quiet_liblsl_writes_no_file_and_leaves_the_environment(monkeypatch, tmp_path):
    import os
    import tempfile

    from staging.monitor.sources import _quiet_liblsl

    monkeypatch.delenv("LSLAPICFG", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    before = dict(os.environ)
    _quiet_liblsl()
    assert dict(os.environ) == before
    assert list(tmp_path.iterdir()) == []


def test_tcp_source_is_simulated_only_when_its_hello_says_so(monkeypatch):
    from headset.device import SIMULATED_DEVICE, Device
    from headset.transport import TcpServer
    from staging.monitor.sources import open_source

    key = bytes(range(32))
    hello = Device.hello_info
    seen = {}
    for name, simulated in ((SIMULATED_DEVICE, True), ("a real headset", False)):
        monkeypatch.setattr(Device, "hello_info", lambda self, n=name: {**hello(self), "device": n})
        dev = Device.from_profile("healthy", 1, 60.0, key=key)
        srv = TcpServer(dev, port=0, speed="max", idle_timeout=30)
        srv.start_thread()
        try:
            src = open_source(f"tcp://127.0.0.1:{srv.port}", key=key)
            seen[name] = src.simulated
            src.close()
        finally:
            srv.stop()
        assert seen[name] is simulated, seen
