"""MonitorSession mechanics on a scripted source and pipeline (no other component needed)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from headset.chunk import FLAG_GAP, FLAG_LEAD_OFF, Annotation, Chunk, StreamInfo
from staging.closedloop.arousal import ArousalEvent
from staging.closedloop.nightmare import NightmareAlert
from staging.events import ArousalRecord, NightmareAlertRecord
from staging.monitor.events import EventWriter, format_event, read_events
from staging.monitor.keys import Action, KeyInterpreter
from staging.monitor.session import TRACE_S, MonitorSession, Pacer, StepOutput, run_headless

SFREQ = 64.0
NAMES = ("EEG C4-M1", "EMG chin")
TYPES = ("eeg", "emg")


class ScriptedSource:
    """Seeded noise; a gap at 10-12 s, lead-off on EMG 20-25 s; ground-truth stages."""

    label = "scripted"
    simulated = True
    live = False

    def __init__(self, seconds=120.0, seed=0, chunk=17):
        self.n_total = int(seconds * SFREQ)
        self.pos = 0
        self.rng = np.random.default_rng(seed)
        self.ch_names, self.ch_types, self.sfreq = NAMES, TYPES, SFREQ
        self.cues = []
        self.chunk = chunk  # the source's own chunking differs from the session's blocks
        self.closed = False

    @property
    def done(self):
        return self.pos >= self.n_total

    @property
    def counters(self):
        return {"packets_ok": self.pos // 8, "packets_lost": 0, "reconnects": 0}

    def read(self, n):
        n = min(n, self.chunk, self.n_total - self.pos)
        if n <= 0:
            return None
        idx = np.arange(self.pos, self.pos + n)
        data = self.rng.normal(0, 10, (2, n))
        flags = np.zeros((2, n), np.uint8)
        flags[:, (idx >= 10 * SFREQ) & (idx < 12 * SFREQ)] |= FLAG_GAP
        flags[1, (idx >= 20 * SFREQ) & (idx < 25 * SFREQ)] |= FLAG_LEAD_OFF
        anns = tuple(
            Annotation(e * 30.0, 30.0, "Sleep stage N2")
            for e in range(self.pos // 1920, (self.pos + n - 1) // 1920 + 1)
            if e * 1920 >= self.pos
        )
        c = Chunk(data, self.pos, SFREQ, NAMES, TYPES, flags, anns)
        self.pos += n
        return c

    def send_cue(self, kind, level, duration_s):
        self.cues.append((kind, level))
        return True, "settled", 1

    def close(self):
        self.closed = True


class ScriptedPipeline:
    """Stage N2 at every 30-s epoch end; a nightmare alert in force 40-60 s and 80-100 s;
    the real intervention policy (technician mode) behind it."""

    missing = []
    notes = ["scripted"]

    def __init__(self, send):
        from staging.closedloop.policy import LadderStep, PolicyConfig
        from staging.monitor.pipeline import PolicyHook

        cfg = PolicyConfig(
            ladder=(LadderStep("audio", 0.1, 3.0), LadderStep("vibration", 0.4, 2.0)),
            cooldown_s=20.0,
            min_interval_s=20.0,
            resolve_s=15.0,
        )
        self.policy = PolicyHook(send, cfg, grace_s=10.0)
        self.stage = -1

    def process(self, chunk):
        out = StepOutput()
        end = chunk.stop_sample
        t = end / SFREQ
        if end % 1920 == 0:
            ep = end // 1920 - 1
            probs = np.array([0.1, 0.1, 0.6, 0.1, 0.1])
            out.stages.append(
                SimpleNamespace(epoch=ep, onset_s=ep * 30.0, stage=2, probs=probs, confidence=0.6)
            )
            self.stage = 2
        alert = SimpleNamespace(risk=0.9) if (40 <= t < 60 or 80 <= t < 100) else None
        if t in (40.0, 80.0):
            hr = {"value": 80.0, "baseline": 60.0, "unit": "bpm", "evidence": 3.0, "weight": 0.7}
            out.alerts.append(NightmareAlert(t, 0.9, 4, {"heart_rate": hr}))
            out.arousals.append(ArousalEvent(t - 5, t - 1, 2, 8.0, "alpha", float("nan")))
        out.decisions.extend(self.policy.update(t, self.stage, alert))
        out.heart_rate = 60.0
        return out

    def approve(self, t):
        return self.policy.approve(t)

    def veto(self, t):
        return self.policy.veto(t)


class MemRecorder:
    def __init__(self):
        self.samples = 0
        self.annotations = []
        self.closed = False

    def write(self, chunk):
        self.samples += chunk.n_samples
        self.annotations.extend(chunk.annotations)

    def annotate(self, ann):
        self.annotations.append(ann)

    def close(self):
        self.closed = True


def _run(tmp_path, name, actions=(), view=True, **kw):
    path = tmp_path / name
    src = ScriptedSource(**kw)
    rec = MemRecorder()
    pipe = ScriptedPipeline(src.send_cue)
    s = MonitorSession(src, pipeline=pipe, events=EventWriter(path), recorder=rec, grace_s=10.0,
                       view=view)  # fmt: skip
    acts = dict(actions)
    while s.step():
        a = acts.get(round(s.t))
        if a:
            a(s)
    return s, read_events(path), rec, src, pipe


def test_deterministic_and_chunking_free(tmp_path):
    s1, ev1, *_ = _run(tmp_path, "a.jsonl", chunk=17)
    s2, ev2, *_ = _run(tmp_path, "b.jsonl", chunk=500)
    assert ev1 == ev2
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    assert ev1[0]["type"] == "session_start" and ev1[-1]["type"] == "session_end"
    assert s1.state.end_reason == "end"
    assert [e["epoch"] for e in ev1 if e["type"] == "stage"] == [0, 1, 2, 3]
    assert all(isinstance(e["t"], float | int) for e in ev1)


def test_flags_become_events(tmp_path):
    _, ev, *_ = _run(tmp_path, "a.jsonl")
    gaps = [e for e in ev if e["type"] == "gap"]
    assert [(g["onset"], g["duration"]) for g in gaps] == [(10.0, 2.0)]
    lo = [e for e in ev if e["type"] == "lead_off"]
    assert [(e["status"], e["channel"]) for e in lo] == [("start", "EMG chin"), ("end", "EMG chin")]
    assert lo[1]["onset"] == 20.0 and lo[1]["duration"] == 5.0
    assert lo[1]["annotation"] == "Lead off: EMG chin"


def _cues(ev):
    return [
        (e["t"], e["status"])
        for e in ev
        if e["type"] == "intervention" and e["status"] in ("proposed", "sent", "cancelled")
    ]


def test_grace_then_sent_and_annotations(tmp_path):
    s, ev, rec, src, pipe = _run(tmp_path, "a.jsonl")
    # decisions at 5-s block ends: proposed, approved when the grace period ends, then sent
    assert _cues(ev) == [(40.0, "proposed"), (55.0, "sent"), (80.0, "proposed"), (95.0, "sent")]
    grace = [e for e in ev if e["type"] == "approve"]
    assert [(e["t"], e["by"]) for e in grace] == [(50.0, "grace period"), (90.0, "grace period")]
    sent = [e for e in ev if e["type"] == "intervention" and e["status"] == "sent"]
    assert sent[0]["outcome"] == "settled" and sent[0]["annotation"] == "Intervention: audio"
    assert src.cues == [("audio", 0.1), ("audio", 0.1)]
    # every event that names an annotation is in the recording
    texts = {(round(a.onset, 3), a.description) for a in rec.annotations}
    for e in ev:
        if "annotation" in e and e["type"] not in ("gap", "lead_off"):
            assert (round(e["onset"], 3), e["annotation"]) in texts
    assert rec.closed and src.closed and rec.samples == 120 * 64
    assert s.state.truth[:4] == [2, 2, 2, 2]
    assert s.state.counters["cues_sent"] == 2 and s.state.pending is None


def test_veto_wins_and_approve_sends(tmp_path):
    s, ev, rec, src, pipe = _run(
        tmp_path, "a.jsonl", actions={42: MonitorSession.veto, 81: MonitorSession.approve}
    )
    assert _cues(ev) == [(40.0, "proposed"), (42.0, "cancelled"), (80.0, "proposed"),
                         (85.0, "sent")]  # fmt: skip
    assert src.cues == [("audio", 0.1)]
    veto = next(e for e in ev if e["type"] == "veto")
    assert veto["t"] == 42.0 and veto["annotation"] == "Intervention vetoed: audio"
    assert any(e["type"] == "approve" and e["by"] == "technician" for e in ev)
    # no cue while the veto holds, although the alert was still in force
    assert not any(
        e["type"] == "intervention" and e["status"] == "sent" and e["t"] < 80 for e in ev
    )
    assert not s.veto() and not s.approve()  # nothing pending any more


def test_ack_note_pause(tmp_path):
    def act(s):
        assert s.ack()
        s.note("  child   turned over ")
        s.set_paused(True)
        s.set_paused(False)

    s, ev, rec, *_ = _run(tmp_path, "a.jsonl", actions={45: act})
    types = [e["type"] for e in ev if e["t"] == 45.0]
    assert types[:4] == ["ack", "note", "pause", "resume"]
    note = next(e for e in ev if e["type"] == "note" and "text" in e and e["t"] == 45.0)
    assert note["text"] == "child turned over"
    assert any(a.description == "Note: child turned over" for a in rec.annotations)
    assert s.state.alerts and not s.state.open_alerts[:1] == s.state.alerts[:1]
    with pytest.raises(ValueError):
        s.note("   ")


def test_duration_and_quit_finish_once(tmp_path):
    src = ScriptedSource()
    rec = MemRecorder()
    s = MonitorSession(src, pipeline=ScriptedPipeline(src.send_cue), recorder=rec, duration_s=31.5)
    assert run_headless(s, None) == "duration"
    assert s.t == 31.5 and rec.closed and len(s.state.hypnogram) == 1
    s.finish("quit")  # idempotent
    assert s.state.end_reason == "duration"
    with pytest.raises(ValueError):
        MonitorSession(ScriptedSource(), grace_s=-1)


def test_finish_with_pending_cancels(tmp_path):
    path = tmp_path / "e.jsonl"
    src = ScriptedSource()
    s = MonitorSession(
        src, pipeline=ScriptedPipeline(src.send_cue), events=EventWriter(path), grace_s=60
    )
    while s.t < 45:
        s.step()
    assert s.state.pending is not None
    s.finish("quit")
    ev = read_events(path)
    assert ev[-2]["status"] == "cancelled" and ev[-1]["reason"] == "quit"
    assert ev[-2]["reason"] == "session ended"


def test_trace_ring_and_quality(tmp_path):
    src = ScriptedSource()
    s = MonitorSession(src, pipeline=ScriptedPipeline(src.send_cue))
    while s.t < 21:
        s.step()
    assert s.trace().shape == (2, int(21 * SFREQ))
    q = {c.name: c.level for c in s.refresh_quality()}
    assert q["EMG chin"] == "bad" and q["EEG C4-M1"] == "ok"
    assert s.lead_off_since() == {1: 20.0}  # the EMG electrode, off since 20 s
    while s.t < TRACE_S + 1:
        s.step()
    assert s.trace().shape == (2, int(TRACE_S * SFREQ))
    assert s.lead_off_since() == {}


def test_without_a_view_nothing_is_filtered_or_kept_and_nothing_changes(tmp_path, monkeypatch):
    shown = []
    monkeypatch.setattr(ScriptedPipeline, "display", lambda self, x: shown.append(x) or x * 0.5,
                        raising=False)  # fmt: skip
    s1, ev1, rec1, *_ = _run(tmp_path, "view.jsonl")
    n_frames = len(shown)
    s2, ev2, rec2, *_ = _run(tmp_path, "headless.jsonl", view=False)
    assert n_frames > 0 and len(shown) == n_frames  # headless: the display filter never runs
    assert (tmp_path / "view.jsonl").read_bytes() == (tmp_path / "headless.jsonl").read_bytes()
    assert rec1.annotations == rec2.annotations
    assert s1.trace().shape == (2, int(TRACE_S * SFREQ)) and s2.trace().shape == (2, 0)
    assert s2._trace.nbytes == 0
    assert [q.level for q in s1.refresh_quality()] == [q.level for q in s2.refresh_quality()]


def test_pacer():
    p = Pacer(None)
    assert p.target(3.0, False) == float("inf")
    p = Pacer(60.0)
    assert p.target(0.0, True) == 0.0
    assert 0.0 <= p.target(0.0, False) <= 5.0
    with pytest.raises(ValueError):
        Pacer(0)


def test_format_event_is_plain_json():
    line = format_event(
        np.float64(1.23456789), "stage", probs=np.array([0.5, np.nan]), n=np.int64(3), ok=np.True_
    )
    assert json.loads(line) == {
        "t": 1.2346,
        "type": "stage",
        "probs": [0.5, None],
        "n": 3,
        "ok": True,
    }
    with pytest.raises(TypeError):
        format_event(0, "x", t=1)
    with pytest.raises(ValueError):
        format_event(0, "")


def test_key_interpreter():
    k = KeyInterpreter()
    assert k.feed("avyq") == [Action("ack"), Action("veto"), Action("approve"), Action("quit")]
    assert k.feed("nhello\x7fp") == [] and k.note_buffer == "hellp"
    assert k.feed(" world\r") == [Action("note", "hellp world")] and k.note_buffer is None
    assert k.feed("n\x1bq") == [Action("quit")]  # Esc cancels the note
    assert k.feed("\x1b[Ap") == [Action("pause")]  # arrow keys ignored
    assert k.feed("x") == []


def test_real_recorder_and_replay(tmp_path):
    """Events that name an annotation are in the EDF+ file; a replay drops old conclusions."""
    import mne

    from headset import recorder as recorder_mod
    from staging.monitor.sources import open_source

    edf, jl = tmp_path / "s.edf", tmp_path / "s.jsonl"
    src = ScriptedSource(seconds=100)
    rec = recorder_mod.Recorder(edf, NAMES, TYPES, SFREQ)
    s = MonitorSession(
        src, pipeline=ScriptedPipeline(src.send_cue), events=EventWriter(jl), recorder=rec
    )
    while s.step():
        if s.t == 60.0:
            s.note("hello")
    raw = mne.io.read_raw_edf(edf, preload=False, verbose="error")
    anns = {
        (round(float(o), 2), d) for o, d in zip(raw.annotations.onset, raw.annotations.description)
    }
    ev = read_events(jl)
    named = [e for e in ev if "annotation" in e]
    assert {e["type"] for e in named} >= {
        "stage",
        "arousal",
        "nightmare_alert",
        "intervention",
        "note",
        "gap",
        "lead_off",
    }
    for e in named:
        assert (round(e["onset"], 2), e["annotation"]) in anns, e
    # replay: ground truth stays, the earlier session's conclusions do not come along
    rsrc = open_source(str(edf))
    got = []
    while (c := rsrc.read(640)) is not None:
        got.extend(a.description for a in c.annotations)
    rsrc.close()
    assert "Sleep stage N2" in got and "Gap" in got
    assert not any(t.startswith(("Scored", "Detected", "Nightmare", "Note", "Interv")) for t in got)


def test_pipeline_notes_what_the_stream_cannot_feed_but_raises_a_failing_import(monkeypatch):
    from staging.errors import StagingError
    from staging.monitor import pipeline as P

    names, types = ("EEG C4-M1", "EOG E1-M2", "EMG chin"), ("eeg", "eog", "emg")

    def too_slow(*args):
        raise StagingError("rate 32 Hz is below 64 Hz")

    monkeypatch.setattr(P, "_arousal", too_slow)
    pipe = P.Pipeline(StreamInfo.create(256.0, names, types))
    assert pipe.arousal is None and pipe.stager is not None
    assert "arousal detector (rate 32 Hz is below 64 Hz)" in pipe.missing

    def broken(*args):
        raise ImportError("cannot import name 'ArousalDetector'")

    monkeypatch.setattr(P, "_arousal", broken)
    with pytest.raises(ImportError, match="ArousalDetector"):
        P.Pipeline(StreamInfo.create(256.0, names, types))


def test_monitor_stream_writes_the_schema(tmp_path):
    _, events, rec, *_ = _run(tmp_path, "s.jsonl")
    arousals = [e for e in events if e["type"] == "arousal"]
    alerts = [e for e in events if e["type"] == "nightmare_alert"]
    assert len(arousals) == len(alerts) == 2
    for e in arousals:
        assert list(e) == ["t", "type", *ArousalRecord.__annotations__]
        assert e["t"] - e["onset"] == 5.0 and e["stage"] == "N2"  # reported at the block's end
    for e in alerts:
        assert list(e) == ["t", "type", "alert", *NightmareAlertRecord.__annotations__]
        assert e["evidence"]["heart_rate"]["value"] == 80.0 and e["stage"] == "R"
    written = {(a.onset, a.description) for a in rec.annotations}
    assert {(e["onset"], e["annotation"]) for e in arousals + alerts} <= written
