"""Drive the live view in a pseudo-terminal as a technician would (pexpect)."""

from __future__ import annotations

import re

import pytest
from _tty import ANSI, Screen

from staging.monitor.events import read_events

HEADER = "dreamnet monitor "


@pytest.fixture
def screen_factory(tmp_path):
    screens = []

    def make(*args, **kw):
        kw = {"rows": 45, "cols": 140, **kw}
        s = Screen("monitor", args, tmp_path, header=HEADER, **kw)
        screens.append(s)
        return s

    yield make
    for s in screens:
        s.close()


def test_technician_vetoes_notes_and_quits(tmp_path, screen_factory):
    import mne

    edf, ev = tmp_path / "drill.edf", tmp_path / "drill.jsonl"
    scr = screen_factory(
        "--source", "drill", "--speed", "max", "--record", str(edf), "--events", str(ev)
    )
    # the view shows the stage, the signals and, in REM, the nightmare alert and the proposal
    scr.wait_for(r"hypnogram \(clock time\)")
    scr.child.send("l")  # lights off, written into the recording
    scr.wait_for(r"lights off at \d\d:\d\d:\d\d \(written into the recording\)")
    # the pending cue says what will happen and when: a countdown, not "awaiting"
    scr.wait_for(r"cue in \d+ s unless vetoed \(v\)", timeout=90)
    scr.wait_for(r"audio at volume 15 % for 3 s")
    scr.wait_for(r"NIGHTMARE ALERT, risk 0\.\d\d \(0-1\)")  # the alert, with its risk
    scr.wait_for(r"1x \(cue pending\)")  # the clock slowed to real time for the grace period
    left = int(re.findall(r"cue in (\d+) s unless", scr.wait_for(r"cue in \d+ s unless"))[-1])
    assert 1 <= left <= 10  # the grace period (10 s)
    scr.wait_for(rf"cue in [0-{left - 1}] s unless vetoed")  # it counts down
    scr.child.send("v")
    scr.wait_for(r"VETOED audio")
    scr.wait_for(r"intervention vetoed")
    scr.child.send("a")
    scr.wait_for(r"acknowledged \d alert")
    scr.child.send("n")
    scr.wait_for(r"note: _")
    scr.child.send("child turned over\r")
    scr.wait_for(r"note saved")
    scr.child.send("p")
    scr.wait_for(r"PAUSED")
    scr.child.send("p")
    scr.wait_for(r"resumed")
    scr.child.send("q")
    assert scr.finish() == 0
    tail = ANSI.sub("", scr.raw[-2000:])
    assert "dreamnet monitor: quit" in tail and str(edf) in tail
    # the recording is complete and readable, with the technician's acts in it
    raw = mne.io.read_raw_edf(edf, preload=False, verbose="error")
    texts = list(raw.annotations.description)
    assert "Note: child turned over" in texts
    assert "Lights off" in texts
    assert "Intervention vetoed: audio" in texts
    assert any(t.startswith("Scored stage R") for t in texts)
    events = read_events(ev)
    kinds = [e["type"] for e in events]
    assert "veto" in kinds and "note" in kinds and "ack" in kinds and "pause" in kinds
    lights = next(e for e in events if e["type"] == "lights")
    assert lights["state"] == "off" and lights["annotation"] == "Lights off"
    veto = next(e for e in events if e["type"] == "veto")
    sent_after = [e for e in events if e["type"] == "intervention" and e["status"] == "sent"
                  and veto["t"] <= e["t"] < veto["t"] + 20]  # fmt: skip
    assert not sent_after  # the veto won: nothing was sent in its wake
    assert events[-1]["type"] == "session_end" and events[-1]["reason"] == "quit"


def test_ctrl_c_finalises_and_resize_redraws(tmp_path, screen_factory):
    import mne

    edf, ev = tmp_path / "n.edf", tmp_path / "n.jsonl"
    scr = screen_factory(
        "--speed", "60", "--seed", "2", "--record", str(edf), "--events", str(ev),
        rows=40, cols=120,
    )  # fmt: skip
    scr.wait_for(r"traces: last 30 s")
    scr.wait_for(r"Scored|N1|W ", timeout=60)
    scr.child.setwinsize(30, 90)
    scr.raw = ""
    frame = scr.wait_for(r"hypnogram")
    lines = [ln for ln in scr.frame().splitlines() if ln.strip()]
    assert lines and max(len(ln) for ln in lines) <= 90
    assert frame
    scr.child.sendintr()
    assert scr.finish() == 130
    raw = mne.io.read_raw_edf(edf, preload=False, verbose="error")
    assert raw.n_times > 0
    events = read_events(ev)
    assert events[-1]["type"] == "session_end" and events[-1]["reason"] == "interrupt"


def test_live_view_takes_the_same_decisions_as_headless(tmp_path, screen_factory):
    """Watched or not, the same night gives the same event stream, byte for byte."""
    from staging.cli import main

    live_ev, head_ev = tmp_path / "live.jsonl", tmp_path / "headless.jsonl"
    common = ["--source", "drill", "--speed", "max", "--grace", "0", "--seed", "4"]
    scr = screen_factory(*common, "--events", str(live_ev))
    scr.wait_for(r"session ended \(end\)", timeout=120)
    scr.child.send("q")
    assert scr.finish() == 0
    assert main(["monitor", "--no-tui", *common, "--events", str(head_ev)]) == 0
    live, head = read_events(live_ev), read_events(head_ev)
    assert any(e["type"] == "intervention" and e["status"] == "sent" for e in head)
    assert live == head


def test_a_session_that_writes_nothing_says_so(tmp_path, screen_factory):
    """Without --record/--events/--report the screen says plainly that notes are not kept."""
    scr = screen_factory("--source", "drill", "--speed", "1", "--duration", "2m")
    scr.wait_for(r"NOT RECORDING")
    scr.child.send("n")
    scr.wait_for(r"NOT SAVED: no file")
    scr.child.send("lights flickering\r")
    scr.wait_for(r"note NOT saved: not recording")
    scr.child.send("q")
    assert scr.finish() == 0
    tail = ANSI.sub("", scr.raw[-2000:])
    assert "no file written, typed notes are lost" in tail
    assert "note saved" not in ANSI.sub("", scr.raw)


def test_trace_panel_scale_keys_and_truth_toggle(tmp_path, screen_factory):
    """The filtered traces in braille at a fixed scale; keys change it; truth is switchable."""
    scr = screen_factory("--source", "drill", "--speed", "10", "--duration", "10m")
    scr.wait_for(r"traces: last 30 s, filtered; EEG 50, EOG 100, EMG 20 µV/div; 1 div = 1 row")
    scr.wait_for(r"│ EEG F4-M1 ")
    scr.wait_for(r"[\u2801-\u28ff]{40}")  # a trace drawn in braille
    scr.wait_for(r"electrodes \(lead-off; no impedance\)")
    scr.wait_for(r"front end: gain 24")
    scr.child.send("+")
    scr.wait_for(r"EEG 20, EOG 50, EMG 10 µV/div")
    scr.child.send("<")
    scr.wait_for(r"traces: last 20 s")
    scr.child.send("c")
    scr.wait_for(r"channels: EEG\s")
    scr.wait_for(r"simulator truth \(t hides\)")
    scr.child.send("t")
    scr.wait_for(r"simulator truth hidden")
    scr.raw = ""
    frame = scr.wait_for(r"hypnogram \(clock time\)")
    assert "t hides" not in frame
    scr.child.send("q")
    assert scr.finish() == 0
