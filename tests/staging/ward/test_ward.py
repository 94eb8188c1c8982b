"""`dreamnet ward`: beds, the disturbance rule, the headless ward, isolation, kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from _constants import REPO
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks._proc import alive, children
from headset.errors import HeadsetError
from staging.cli import main
from staging.errors import StagingError
from staging.monitor.events import read_events
from staging.ward import MAX_BEDS
from staging.ward.app import ROUND_S, WardOptions, build_ward, noise_times, run_headless
from staging.ward.beds import (
    BedSpec,
    check_beds,
    parse_bed,
    read_beds_file,
    simulated_beds,
    split_faults,
)
from staging.ward.detect import DisturbanceDetector

ROOT = REPO
LINUX = sys.platform.startswith("linux")


# ---------------------------------------------------------------------------------- beds
def test_simulated_beds_are_mixed_seeded_and_stable():
    a = simulated_beds(16, seed=5)
    assert a == simulated_beds(16, seed=5)
    assert simulated_beds(20, seed=5)[:16] == a  # adding beds never changes the others
    assert [b.name for b in a[:3]] == ["bed01", "bed02", "bed03"]
    assert len({b.profile for b in a}) >= 3
    assert len({b.seed for b in a}) == 16
    assert simulated_beds(16, seed=6) != a
    for bad in (0, MAX_BEDS + 1, -3):
        with pytest.raises(StagingError, match="1 to 256 beds"):
            simulated_beds(bad, 0)


def test_bed_specs_and_files(tmp_path):
    b = parse_bed("kid=synthetic:child", seed=1, index=2)
    assert (b.name, b.source, b.profile) == ("kid", "synthetic", "child")
    assert parse_bed("lab=tcp://127.0.0.1:7000").source == "tcp://127.0.0.1:7000"
    for bad, msg in (
        ("nosource", "NAME=SOURCE"),
        ("a b=synthetic", "bad bed name"),
        ("x=synthetic:elf", "unknown profile"),
    ):
        with pytest.raises(StagingError, match=msg):
            parse_bed(bad)  # fmt: skip
    with pytest.raises(StagingError, match="unknown source"):
        parse_bed("x=ftp://h")
    with pytest.raises(HeadsetError, match="no such file"):
        parse_bed("x=missing.edf")
    with pytest.raises(StagingError, match="used twice"):
        check_beds([BedSpec("a"), BedSpec("a")])
    f = tmp_path / "ward.toml"
    f.write_text('[[bed]]\nname = "one"\nprofile = "insomnia"\nseed = 4\n'
                 '[[bed]]\nname = "two"\nsource = "drill"\nkey = "pair.key"\n')  # fmt: skip
    beds = read_beds_file(f, seed=0)
    assert [(b.name, b.source, b.profile, b.seed) for b in beds][0] == ("one", "synthetic",
                                                                       "insomnia", 4)  # fmt: skip
    assert beds[1].source == "drill" and beds[1].key == str(tmp_path / "pair.key")
    f.write_text('[[bed]]\nname = "one"\ncolour = "red"\n')
    with pytest.raises(StagingError, match="unknown key.*colour"):
        read_beds_file(f)
    f.write_text("[[bed]\n")
    with pytest.raises(StagingError, match="not a TOML file"):
        read_beds_file(f)
    with pytest.raises(HeadsetError, match="no such file"):
        read_beds_file(tmp_path / "none.toml")


def test_ward_faults_split_noise_from_bed_faults():
    n, faults = split_faults("noise=3,pops=2")
    assert n == 3 and faults.pops == 2
    assert split_faults(None)[0] == 0
    for bad in ("noise=1.5", "noise=-1", "noise=21", "noise=x"):
        with pytest.raises(HeadsetError, match="noise"):
            split_faults(bad)
    times = noise_times(4, 8 * 3600.0, seed=2)
    assert len(times) == 4 and times == sorted(times) and times == noise_times(4, 28800.0, 2)
    assert all(1440.0 <= t < 28800.0 and t % ROUND_S == 0 for t in times)


# ------------------------------------------------------------------------ disturbance rule
def test_three_beds_within_the_window_make_one_disturbance():
    d = DisturbanceDetector(min_beds=3, window_s=30.0)
    d.add("a", 100.0, 5.0)
    d.add("b", 104.0, 8.0)
    assert d.update(120.0) == []  # two beds: not yet
    d.add("a", 110.0, 3.0)  # the same bed again does not count twice
    assert d.update(125.0) == []
    d.add("c", 128.0, 4.0)
    ((found, new),) = d.update(140.0)
    # the onset is the median of the beds' onsets (100, 104, 128), the room's moment
    assert sorted(new) == ["a", "b", "c"] and found.onset == 104.0 and found.end == 132.0
    early = DisturbanceDetector(min_beds=3, window_s=30.0, latency_s=1e6)
    for bed, onset in (("p", 70.0), ("q", 99.0), ("r", 100.0), ("s", 101.0), ("t", 102.0)):
        early.add(bed, onset, 2.0)
    ((dense, _),) = early.update(200.0)  # p, q, r qualify from 70 s; the noise is at 99 s
    assert dense.onset == 100.5 and sorted(dense.beds) == ["q", "r", "s", "t"]
    d.add("e", 129.0, 2.0)  # a late report within the window joins it
    ((grown, new),) = d.update(150.0)
    assert grown is found and new == ["e"] and len(d.found) == 1
    d.add("x", 400.0, 3.0)
    d.add("y", 431.0, 3.0)  # 31 s later: outside the window
    d.add("z", 462.0, 3.0)
    assert d.update(500.0) == [] and len(d.found) == 1
    with pytest.raises(ValueError, match="min_beds"):
        DisturbanceDetector(min_beds=1)


def test_a_noise_makes_one_disturbance_at_its_moment():
    # seen in a seeded 8-bed ward (seed 3, noise at 3575 s): one bed woke by itself 11 s
    # before the noise, five were aroused by it, and four of them were then scored W from the
    # next epoch (3600 s). One disturbance, at the noise, not one at 3564 s and one at 3600 s.
    d = DisturbanceDetector(min_beds=3, window_s=30.0, latency_s=60.0)
    d.add("bed05", 3563.75, 3.75)
    for bed, onset in (("bed08", 3579.75), ("bed03", 3579.75), ("bed01", 3580.25)):
        d.add(bed, onset, 5.0)
    d.add("bed02", 3580.25, 5.75)
    ((found, new),) = d.update(3590.0, 8)
    assert found.onset == 3579.75 and len(new) == 5
    for bed in ("bed01", "bed02", "bed03", "bed08"):
        d.add(bed, 3600.0, 30.0)  # the awakening: epochs scored W
    d.add("bed06", 3605.0, 3.75)  # within 30 s of the onset: joins
    ((grown, new),) = d.update(3700.0, 8)
    assert grown is found and new == ["bed06"] and len(d.found) == 1 and grown.end == 3630.0
    # in a large ward half of the running beds must be reached too
    big = DisturbanceDetector(min_beds=3, window_s=30.0, quorum=1 / 3)
    assert (big.needed(4), big.needed(8), big.needed(16), big.needed(64)) == (3, 3, 6, 22)
    assert DisturbanceDetector().needed(16) == 8
    for i in range(10):
        big.add(f"b{i}", 1000.0 + i, 3.0)
    assert big.update(1020.0, 64) == []  # 10 of 64 beds: spontaneous arousals, not the room
    for i in range(10, 22):
        big.add(f"b{i}", 1012.0, 3.0)
    ((found, new),) = big.update(1030.0, 64)
    assert len(new) == 22


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abcdefgh"), st.floats(0, 3000)), max_size=40),
       st.randoms(use_true_random=False))  # fmt: skip
def test_disturbances_do_not_depend_on_the_order_arousals_arrive_in(arousals, rnd):
    def run(items):
        d = DisturbanceDetector(min_beds=3, window_s=30.0, latency_s=1e6)
        for bed, onset in items:
            d.add(bed, onset, 3.0)
        d.update(1e4)
        return [(x.onset, sorted(x.beds.items())) for x in d.found]

    shuffled = list(arousals)
    rnd.shuffle(shuffled)
    got = run(arousals)
    assert got == run(shuffled)
    for onset, beds in got:  # 3 beds at least; the onset is the median of theirs
        starts = sorted(b[1][0] for b in beds)
        assert len(beds) >= 3 and starts[-1] - starts[0] <= 30.0
        assert starts[0] <= onset <= starts[-1]
        assert sum(s <= onset for s in starts) >= len(starts) / 2


# ------------------------------------------------------------------------ headless ward
def _ward(tmp_path, name, **kw):
    opts = WardOptions(speed=None, tui=False, events=str(tmp_path / f"{name}.jsonl"), **kw)
    ward = build_ward(opts)
    assert run_headless(ward, None) == "end"
    return ward, read_events(tmp_path / f"{name}.jsonl")


ROOM_T = 40.0  # the round ending here reports the arousals of ``_ROOM_BEDS``
_ROOM_BEDS = ("bed01", "bed02", "bed04")


@pytest.fixture
def room_arousals(monkeypatch):
    """Three of four beds report an arousal in the round that ends at ``ROOM_T`` (a room event).

    Patched on the class before the ward forks its workers, so every layout sees it.
    """
    from staging.ward.worker import Bed

    real = Bed.take

    def take(self, full=True):
        lines, row, arousals = real(self, full)
        if self.name in _ROOM_BEDS and self.session.t >= ROOM_T and not hasattr(self, "_told"):
            self._told = True
            arousals = [*arousals, (ROOM_T - 9.0 + _ROOM_BEDS.index(self.name), 3.0)]
        return lines, row, arousals

    monkeypatch.setattr(Bed, "take", take)


@pytest.fixture
def rounds_ahead(monkeypatch):
    """Record how many rounds were in flight each time a round started."""
    from staging.ward.app import Ward

    seen: list[int] = []
    real = Ward._new_round

    def new_round(self, t0, t1):
        seen.append(len(self._flight))
        return real(self, t0, t1)

    monkeypatch.setattr(Ward, "_new_round", new_round)
    return seen


def _room_reaches_its_beds_a_round_later(ev):
    """The room's decision at ``ROOM_T`` reaches each of its beds at ``ROOM_T + ROUND_S``."""
    (d,) = [e for e in ev if e["type"] == "disturbance" and e["bed"] == "ward"]
    assert d["t"] == ROOM_T and d["beds"] == sorted(_ROOM_BEDS) and d["onset"] == ROOM_T - 8
    marks = {e["bed"]: e["t"] for e in ev if e["type"] == "disturbance" and e["bed"] != "ward"}
    assert marks == dict.fromkeys(_ROOM_BEDS, ROOM_T + ROUND_S)


def _layout(tmp_path, name, workers, *, pipeline=True, speed=None, round_s=ROUND_S):
    """Run the 4-bed, 2-min seeded ward; return the ward and its event stream's bytes."""
    path = tmp_path / f"{name}.jsonl"
    opts = WardOptions(n_beds=4, seed=4, duration_s=120.0, speed=speed, events=str(path),
                       workers=workers, tui=round_s != ROUND_S)  # fmt: skip
    ward = build_ward(opts)
    ward.pipeline = ward.pipeline and pipeline
    if round_s == ROUND_S:
        assert run_headless(ward, speed) == "end"
    else:  # the live view's rounds (what run_live does between two frames)
        ward.want_rows = True
        while ward.step(round_s):
            pass
    return ward, path.read_bytes()


def test_the_ward_stream_does_not_depend_on_the_process_layout(
    tmp_path, room_arousals, rounds_ahead
):
    """In process, one worker or two, pipelined or in lockstep: the same bytes."""
    in_process, text = _layout(tmp_path, "w0", 0)
    assert set(rounds_ahead) == {0}  # in process: one round at a time
    for name, workers, pipeline in (("p1", 1, True), ("p2", 2, True), ("l2", 2, False)):
        rounds_ahead.clear()
        _, other = _layout(tmp_path, name, workers, pipeline=pipeline)
        assert other == text, name
        # pipelined: rounds start while one is in flight, never while two are
        assert set(rounds_ahead) == ({0, 1} if pipeline else {0}), name
    ev = read_events(tmp_path / "w0.jsonl")
    _room_reaches_its_beds_a_round_later(ev)
    beds = {e["bed"] for e in ev}
    assert beds == {"ward", "bed01", "bed02", "bed03", "bed04"}
    for b in ("bed01", "bed02", "bed03", "bed04"):
        mine = [e for e in ev if e["bed"] == b]
        assert mine[0]["type"] == "session_start" and mine[-1]["type"] == "session_end"
        assert mine[-1]["duration_s"] == 120.0
        assert len([e for e in mine if e["type"] == "stage"]) == 4
        ts = [e["t"] for e in mine]
        assert ts == sorted(ts)
    assert ev[0]["type"] == "ward_start" and ev[-1]["type"] == "ward_end"
    assert in_process.rows["bed02"]["recording"] is None


def test_the_room_reaches_its_beds_a_round_later_in_every_mode(tmp_path, room_arousals):
    """Paced, or in the live view's 1-s rounds, the room's decision takes effect at the same
    session time as headless at full speed; paced, the stream is the same bytes."""
    _, text = _layout(tmp_path, "max", 0)
    _, paced = _layout(tmp_path, "paced", 2, speed=2400.0)
    assert paced == text
    for workers in (0, 2):
        ward, _ = _layout(tmp_path, f"live{workers}", workers, speed=1.0, round_s=1.0)
        assert not ward.pipeline
        _room_reaches_its_beds_a_round_later(read_events(tmp_path / f"live{workers}.jsonl"))


@pytest.mark.skipif(not LINUX, reason="fork")
def test_the_opened_bed_comes_from_its_worker_whichever_it_is(tmp_path):
    opts = WardOptions(n_beds=3, seed=1, duration_s=30.0, speed=1.0, tui=True, workers=2)
    ward = build_ward(opts)
    try:
        for bed in ("bed01", "bed02", "bed03", None):  # workers 1, 2, 1
            ward.focus = bed
            ward.step(1.0)
            assert (ward.snapshot or {}).get("t") == (ward.t if bed else None), bed
    finally:
        ward.finish("quit")


@pytest.mark.skipif(not LINUX, reason="fork")
@pytest.mark.parametrize("how", ["stop", "interrupt", "twice"])
def test_a_stop_merges_the_rounds_in_flight(tmp_path, monkeypatch, rounds_ahead, how):
    """A stop or Ctrl-C while a worker runs a round ahead: every round started is merged,
    every bed ends at the same session time, every recording is closed there. A second
    Ctrl-C while the rounds land still ends every bed and closes every recording."""
    from multiprocessing import connection

    from headset.replay import Replay

    opts = WardOptions(n_beds=4, seed=2, duration_s=600.0, speed=None, tui=False, workers=2,
                       events=str(tmp_path / "w.jsonl"), record=str(tmp_path / "rec"))  # fmt: skip
    ward = build_ward(opts)
    assert ward.pipeline
    real_wait = connection.wait
    calls = {"n": 0}

    def wait(*args, **kw):  # after some rounds: a stop request, or Ctrl-C while waiting
        calls["n"] += 1
        if calls["n"] == 20 and how == "stop":
            ward.stop_request = "terminated"
        elif calls["n"] == 20 or (calls["n"] == 21 and how == "twice"):
            raise KeyboardInterrupt
        return real_wait(*args, **kw)

    monkeypatch.setattr(connection, "wait", wait)
    if how == "twice":  # the second one leaves the landing (and run_headless) at once
        with pytest.raises(KeyboardInterrupt):
            run_headless(ward, None)
    else:
        assert run_headless(ward, None) == ("terminated" if how == "stop" else "interrupt")
    assert 1 in rounds_ahead and 30.0 < ward.t < 600.0
    ev = read_events(tmp_path / "w.jsonl")
    assert ev[-1]["type"] == "ward_end" and ev[-1]["duration_s"] == ward.t
    ends = {e["bed"]: e["duration_s"] for e in ev if e["type"] == "session_end"}
    assert len(ends) == 4 and not [e for e in ev if e["type"] == "bed_down"]
    for f in sorted((tmp_path / "rec").glob("*.edf")):
        r = Replay(f)
        seconds = r.header.n_records * r.header.record_duration
        assert seconds == pytest.approx(ends[f.stem], abs=1.0)
    if how != "twice":
        assert not ward._flight and set(ends.values()) == {ward.t}
    else:  # the answers in flight were dropped: a bed may be a round further than the ward
        assert {round(v - ward.t) for v in ends.values()} <= {0, 5, 10}


def test_a_failing_bed_does_not_stop_the_others(tmp_path, monkeypatch):
    opts = WardOptions(
        n_beds=2, bed=["far=tcp://127.0.0.1:9"], seed=1, duration_s=120.0, speed=None,
        tui=False, events=str(tmp_path / "w.jsonl"), workers=0, record=str(tmp_path / "rec"),
    )  # fmt: skip
    ward = build_ward(opts)
    bed2 = ward.groups[0].beds[1]
    real_read = bed2.session.source.read
    calls = {"n": 0}

    def failing(n):  # the second bed's headset fails after 40 s
        calls["n"] += 1
        if calls["n"] > 40:
            raise HeadsetError("link lost for good")
        return real_read(n)

    monkeypatch.setattr(bed2.session.source, "read", failing)
    run_headless(ward, None)
    ev = read_events(tmp_path / "w.jsonl")
    down = {e["bed"]: e["error"] for e in ev if e["type"] == "bed_down"}
    assert set(down) == {"bed02", "far"} and "link lost" in down["bed02"]
    assert ward.rows["far"]["down"] and ward.rows["bed02"]["down"]
    first = [e for e in ev if e["bed"] == "bed01"]
    assert first[-1]["type"] == "session_end" and first[-1]["duration_s"] == 120.0
    from headset.replay import Replay

    for name, seconds in (("bed01", 120.0), ("bed02", 40.0)):  # both recordings readable
        r = Replay(tmp_path / "rec" / f"{name}.edf")
        assert r.header.n_records * r.header.record_duration == pytest.approx(seconds, abs=1.0)


def test_room_noise_is_found_as_disturbances_and_holds_the_cues(tmp_path):
    """Seeded wards: every injected room noise is found, none is found where none was."""
    kw = dict(n_beds=4, seed=1, duration_s=1800.0, workers=2)
    ward, ev = _ward(tmp_path, "noisy", faults="noise=2", record=str(tmp_path / "rec"), **kw)
    noises = [e["t"] for e in ev if e["type"] == "room_noise"]
    found = [e for e in ev if e["type"] == "disturbance" and e["bed"] == "ward"]
    new = [e for e in found if e["status"] == "new"]
    assert len(noises) == 2
    assert len(new) == len(noises)
    for t, d in zip(noises, new):
        assert t - 5.0 <= d["onset"] <= t + 30.0 and len(d["beds"]) >= 3
    # each affected bed: the annotation in its recording, and no cue sent during the hold
    import mne

    for d in found:
        for bed in d["added"]:
            raw = mne.io.read_raw_edf(tmp_path / "rec" / f"{bed}.edf", verbose="error")
            anns = [(round(o, 2), t) for o, t in zip(raw.annotations.onset,
                                                     raw.annotations.description)]  # fmt: skip
            assert (round(d["onset"], 2), "Disturbance") in anns
            sent = [e for e in ev if e["bed"] == bed and e["type"] == "intervention"
                    and e["status"] == "sent" and d["t"] <= e["t"] <= d["t"] + 60]  # fmt: skip
            assert not sent
            held = [e for e in ev if e["bed"] == bed and e["type"] == "intervention"
                    and e["status"] == "veto" and "room disturbance" in e["reason"]]  # fmt: skip
            assert held
    assert ward.counts == {"disturbance": 2, "room_noise": 2}
    # the same ward without the noise: no disturbance at all
    _, quiet = _ward(tmp_path, "quiet", **kw)
    assert not [e for e in quiet if e["type"] in ("disturbance", "room_noise")]


def _last_round_arousals(tmp_path, monkeypatch, beds: list[str]):
    """Run an 8-bed ward of 60 s in which ``beds`` report an arousal in the last round only."""
    events = tmp_path / f"{len(beds)}.jsonl"
    opts = WardOptions(n_beds=8, seed=1, duration_s=60.0, speed=None, tui=False, workers=0,
                       events=str(events))  # fmt: skip
    ward = build_ward(opts)
    group = ward.groups[0]
    real = group.advance

    def advance(t_end, *args, **kw):
        out = real(t_end, *args, **kw)
        if t_end == 60.0:  # the round in which every bed's night ends
            for i, name in enumerate(beds):
                lines, row, arousals = out[name]
                out[name] = (lines, row, [*arousals, (50.0 + i, 3.0)])
        return out

    monkeypatch.setattr(group, "advance", advance)
    assert run_headless(ward, None) == "end"
    return ward, read_events(events)


def test_the_quorum_counts_the_beds_that_ran_the_last_round(tmp_path, monkeypatch):
    """The last round ends every bed: the quorum is still half of the beds that ran it.

    (Counted after the round, no bed was running any more and 3 beds made a disturbance:
    the false disturbance of a quiet 64-bed ward at the end of its night.)
    """
    ward, ev = _last_round_arousals(tmp_path, monkeypatch, ["bed01", "bed03", "bed05"])
    assert ward.detector.needed(8) == 4
    assert ward.counts["disturbance"] == 0
    assert not [e for e in ev if e["type"] == "disturbance"]
    ward, ev = _last_round_arousals(tmp_path, monkeypatch, ["bed01", "bed03", "bed05", "bed07"])
    (d,) = [e for e in ev if e["type"] == "disturbance"]
    assert d["bed"] == "ward" and d["beds"] == ["bed01", "bed03", "bed05", "bed07"]
    assert d["onset"] == 51.5 and ward.counts["disturbance"] == 1  # median of 50-53 s


# ------------------------------------------------------------------------ command line
def test_ward_command_line_errors_are_one_line(tmp_path, capsys):
    for argv, needle in (
        (["ward", "--beds", "0"], "must be 1-256"),
        (["ward", "--beds", "999"], "must be 1-256"),
        (["ward"], "no beds"),
        (["ward", "--beds", "2", "--faults", "noise=99"], "noise"),
        (["ward", "--bed", "x"], "NAME=SOURCE"),
        (["ward", "--beds", "2", "--workers", "500"], "0-64"),
    ):
        assert main([*argv, "--no-tui"]) == 2, argv
        err = capsys.readouterr().err.strip()
        assert needle in err and len(err.splitlines()) == 1, (argv, err)
    ev = tmp_path / "w.jsonl"
    ev.write_text("keep me\n")
    args = ["ward", "--beds", "1", "--no-tui", "--speed", "max", "--duration", "1m"]
    assert main([*args, "--events", str(ev)]) == 2
    assert "exists" in capsys.readouterr().err and ev.read_text() == "keep me\n"
    assert main([*args, "--events", str(ev), "--force", "--report", str(tmp_path / "r")]) == 0
    page = (tmp_path / "r" / "ward.html").read_text()
    assert "bed01/report.html" in page
    assert (tmp_path / "r" / "bed01" / "report.html").exists()


@pytest.mark.slow
@pytest.mark.skipif(not LINUX, reason="reads /proc")
def test_kill_9_of_the_ward_ends_every_worker_and_leaves_readable_recordings(tmp_path):
    from headset.replay import Replay

    rec = tmp_path / "rec"
    cmd = [sys.executable, "-m", "staging.cli", "ward", "--beds", "3", "--workers", "2",
           "--no-tui", "--speed", "20", "--duration", "20m", "--record", str(rec)]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    kids: list[int] = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            kids = children(proc.pid)
            edfs = list(rec.glob("*.edf"))
            if len(kids) == 2 and len(edfs) == 3 and all(f.stat().st_size > 40000 for f in edfs):
                break
            time.sleep(0.1)
        assert proc.poll() is None and len(kids) == 2, proc.stderr.read() if proc.stderr else ""
        time.sleep(6.0)  # past the recorder's flush interval: records on disk
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 30
        while any(alive(p) for p in kids) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(alive(p) for p in kids), "a ward worker outlived the ward"
        for f in sorted(rec.glob("*.edf")):
            r = Replay(f)
            assert r.header.n_records >= 5
            c = r.read(256 * 5)
            assert c is not None and np.isfinite(c.data).all()
    finally:
        for pid in kids:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def test_ward_events_name_their_bed_in_the_cli_run(tmp_path, capsys):
    ev = tmp_path / "w.jsonl"
    argv = ["ward", "--beds", "2", "--no-tui", "--speed", "max", "--duration", "2m",
            "--events", str(ev), "--workers", "2"]  # fmt: skip
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "dreamnet ward: end: 2 beds" in err
    lines = ev.read_text().splitlines()
    assert all(json.loads(x)["bed"] in ("ward", "bed01", "bed02") for x in lines)


def test_ward_events_as_an_lsl_marker_stream(tmp_path):
    pylsl = pytest.importorskip("pylsl")
    from staging.ward.app import Ward
    from staging.ward.lsl import MarkerOutlet
    from staging.ward.worker import BedConfig

    name = f"dreamnet-ward-test-{os.getpid()}"
    outlet = MarkerOutlet(name)
    found = pylsl.resolve_byprop("name", name, 1, 10.0)
    assert found, "the marker stream was not found"
    inlet = pylsl.StreamInlet(found[0])
    inlet.open_stream(timeout=10.0)
    ward = Ward(simulated_beds(2, 0), BedConfig(duration_s=60.0), workers=0, lsl=outlet,
                events=str(tmp_path / "w.jsonl"))  # fmt: skip
    run_headless(ward, None)
    markers = []
    deadline = time.monotonic() + 10
    while len(markers) < outlet.count and time.monotonic() < deadline:
        sample, _ = inlet.pull_sample(timeout=0.5)
        if sample:
            markers.append(json.loads(sample[0]))
    written = read_events(tmp_path / "w.jsonl")
    assert markers == written and {m["bed"] for m in markers} == {"ward", "bed01", "bed02"}


@pytest.mark.skipif(not LINUX, reason="fork")
def test_a_dead_worker_takes_only_its_beds_down(tmp_path):
    opts = WardOptions(n_beds=4, seed=2, duration_s=90.0, speed=None, tui=False, workers=2,
                       events=str(tmp_path / "w.jsonl"))  # fmt: skip
    ward = build_ward(opts)
    ward.step()
    os.kill(ward.groups[1].pid, signal.SIGKILL)  # beds 2 and 4
    assert run_headless(ward, None) == "end"
    ev = read_events(tmp_path / "w.jsonl")
    assert sorted(e["bed"] for e in ev if e["type"] == "bed_down") == ["bed02", "bed04"]
    for bed in ("bed01", "bed03"):
        end = [e for e in ev if e["bed"] == bed and e["type"] == "session_end"]
        assert end and end[0]["duration_s"] == 90.0
