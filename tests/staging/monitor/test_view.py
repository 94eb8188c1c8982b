"""The live view's pieces on inputs whose picture is known: braille traces, clock axis, folding."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from headset.chunk import Annotation, Chunk
from staging.monitor.events import EventWriter, read_events
from staging.monitor.keys import Action, KeyInterpreter
from staging.monitor.session import MonitorSession, StepOutput
from staging.monitor.traces import (
    CHANNEL_SETS,
    PAGES_S,
    SCALES_UV,
    TracePanel,
    TraceSettings,
    braille_rows,
    column_envelope,
)
from staging.monitor.view import Hypnogram, MonitorView, apply_action

SFREQ = 64.0
NAMES = ("EEG C4-M1", "EOG E1-M2", "EMG chin")
TYPES = ("eeg", "eog", "emg")


def _dots(lines: list[str]) -> np.ndarray:
    """Decode braille lines back into their dot grid, shape (4 * rows, 2 * width)."""
    bits = {(0, 0): 0x01, (1, 0): 0x02, (2, 0): 0x04, (3, 0): 0x40}
    bits |= {(0, 1): 0x08, (1, 1): 0x10, (2, 1): 0x20, (3, 1): 0x80}
    out = np.zeros((4 * len(lines), 2 * len(lines[0])), dtype=bool)
    for r, line in enumerate(lines):
        for c, ch in enumerate(line):
            code = 0 if ch == " " else ord(ch) - 0x2800
            assert 0 <= code < 256, f"not a braille character: {ch!r}"
            for (dr, dc), b in bits.items():
                out[4 * r + dr, 2 * c + dc] = bool(code & b)
    return out


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(2, 400),
    cols=st.integers(1, 200),
    seed=st.integers(0, 2**32 - 1),
)
def test_column_envelope_matches_a_loop(n, cols, seed):
    """Each column's range covers its samples and the last sample of the column before."""
    cols = min(cols, n)
    x = np.random.default_rng(seed).normal(0, 50, n)
    lo, hi = column_envelope(x, cols)
    for c in range(cols):
        a, b = c * n // cols, (c + 1) * n // cols
        seg = x[max(a - 1, 0) : b] if c else x[a:b]
        assert lo[c] == seg.min() and hi[c] == seg.max()


def test_braille_draws_a_sine_at_its_scale():
    """A +-25 µV sine at 50 µV/div on 2 rows (12.5 µV per dot) spans dot rows 2..6 exactly;
    at 20 µV/div (5 µV per dot) it fills the 8 rows and sticks to the edges."""
    t = np.arange(int(10 * SFREQ)) / SFREQ
    x = 25.0 * np.sin(2 * np.pi * 1.0 * t)
    dots = _dots(braille_rows(x, 40, 2, 50.0))
    rows_hit = np.flatnonzero(dots.any(axis=1))
    assert rows_hit.tolist() == [2, 3, 4, 5, 6]
    assert dots.any(axis=0).all()  # connected: every dot column has a dot
    # brute force: each dot column's dots are the rows between its min and max
    lo, hi = column_envelope(x, 80)
    expect_top = np.clip(np.floor(4 - hi / 12.5), 0, 7)
    expect_bottom = np.clip(np.floor(4 - lo / 12.5), 0, 7)
    for c in range(80):
        col = np.flatnonzero(dots[:, c])
        assert col.min() == expect_top[c] and col.max() == expect_bottom[c]
    big = _dots(braille_rows(x, 40, 2, 20.0))
    assert big.any(axis=1).all()  # every row used: the wave is clipped to the band
    assert big[0].sum() > 0 and big[7].sum() > 0


def test_braille_leaves_missing_data_blank_and_checks_its_input():
    x = np.full(640, np.nan)
    x[320:] = 0.0
    lines = braille_rows(x, 40, 1, 50.0)
    assert lines[0][:19].strip() == "" and lines[0][21:].strip() != ""
    assert len(lines) == 1 and len(lines[0]) == 40
    with pytest.raises(ValueError, match="uv_per_div"):
        braille_rows(x, 40, 1, 0.0)
    with pytest.raises(ValueError, match="n_cols"):
        column_envelope(x[:10], 20)


def test_trace_settings_keys_change_scale_page_and_channels():
    s = TraceSettings()
    assert s.scale_uv("eeg") == 50.0 and s.page_s == PAGES_S[-1]
    assert s.change_zoom(1) and s.scale_uv("eeg") == 20.0 and s.scale_uv("eog") == 50.0
    assert "EEG 20, EOG 50, EMG 10 µV/div" in s.title(TYPES)
    while s.change_zoom(1):
        pass
    assert min(s.scale_uv(t) for t in ("eeg", "eog", "emg", "ecg")) == SCALES_UV[0]
    assert not s.change_page(1) and s.change_page(-1) and s.page_s == PAGES_S[-2]
    seen = set()
    for _ in CHANNEL_SETS:
        seen.add(s.types)
        s.next_channels()
    assert seen == set(CHANNEL_SETS) and s.types == CHANNEL_SETS[0]


def test_trace_panel_draws_each_channel_at_its_own_scale():
    """EEG at 50 µV/div and EMG at 20 µV/div: the same 20 µV wave is larger on the EMG band."""
    n = int(30 * SFREQ)
    wave = 20.0 * np.sin(2 * np.pi * 2.0 * np.arange(n) / SFREQ)
    data = np.vstack([wave, np.zeros(n), wave])
    panel = TracePanel(data, NAMES, TYPES, SFREQ, TraceSettings(), rows=2, off={1})
    con = Console(width=71, file=io.StringIO(), color_system=None, record=True)
    con.print(panel)
    lines = con.export_text().splitlines()
    assert len(lines) == 3 * 2 + 1  # 2 rows per channel and the time axis
    assert lines[0].startswith("EEG C4-M1") and lines[3].startswith("OFF")  # EOG is off
    body = [ln[11:] for ln in lines[:-1]]
    eeg, emg = _dots(body[0:2]), _dots(body[4:6])
    assert np.flatnonzero(eeg.any(axis=1)).tolist() == [2, 3, 4, 5]  # +-20 µV at 12.5 µV/dot
    assert emg.any(axis=1).all()  # +-20 µV at 5 µV/dot fills the band
    assert "now" in lines[-1] and "-10 s" in lines[-1]


def test_hypnogram_axis_in_clock_time():
    """An 8-h night from 23:00: hour ticks; a 20-min one: 5-minute ticks."""
    h = Hypnogram([2] * 10, total_epochs=960, start_s=23 * 3600)
    axis = h.axis(96, 8 * 3600)
    assert axis.startswith("|23:00") and axis.index("|00:00") == 12 and axis.index("|04:00") == 60
    short = Hypnogram([], 40, start_s=23 * 3600 + 120).axis(60, 1200)
    assert short.index("|23:05") == 9 and "|23:10" in short and "|23:02" not in short


class _Source:
    """20 s of seeded noise with a simulator's truth annotation at 3 s."""

    label, simulated, live = "synthetic test", True, False

    def __init__(self, seconds=40.0):
        self.n, self.pos = int(seconds * SFREQ), 0
        self.ch_names, self.ch_types, self.sfreq = NAMES, TYPES, SFREQ
        self.rng = np.random.default_rng(1)
        self.done = False

    def read(self, n):
        n = min(n, self.n - self.pos)
        if n <= 0:
            self.done = True
            return None
        anns = (Annotation(3.0, 4.0, "Arousal"),) if self.pos == 0 else ()
        data = self.rng.normal(0, 10, (3, n))
        c = Chunk(data, self.pos, SFREQ, NAMES, TYPES, np.zeros((3, n), np.uint8), anns)
        self.pos += n
        return c

    def send_cue(self, kind, level, duration_s):
        return True, "ok", 1

    def close(self):
        pass


class _Pipeline:
    """The policy holds every block, then proposes a cue at 20 s (no stager)."""

    missing, notes = [], []

    def process(self, chunk):
        t = chunk.stop_sample / SFREQ
        out = StepOutput(nightmare_risk=0.42)
        if t < 20:
            out.decisions.append({"t": t, "action": "held", "reason": f"risk falling at {t:g}"})
        elif t == 20:
            out.decisions.append(
                {
                    "t": t,
                    "action": "proposed",
                    "kind": "audio",
                    "level": 0.15,
                    "duration_s": 3.0,
                    "reason": "awaiting technician acknowledgement",
                }  # fmt: skip
            )
        return out

    def approve(self, t):
        return []

    def veto(self, t):
        return []


class _Recorder:
    def __init__(self):
        self.annotations = []

    def write(self, chunk):
        pass

    def annotate(self, ann):
        self.annotations.append(ann)

    def close(self):
        pass


def _screen(view, width=140, height=45) -> str:
    con = Console(width=width, height=height, file=io.StringIO(), color_system=None, record=True)
    con.print(view.render(height, width))
    return con.export_text()


def test_view_folds_policy_lines_counts_down_and_toggles(tmp_path):
    rec = _Recorder()
    s = MonitorSession(
        _Source(), pipeline=_Pipeline(), recorder=rec, events=EventWriter(tmp_path / "e.jsonl")
    )
    while s.t < 21:
        s.step()
    view = MonitorView(s, 60.0)
    text = _screen(view)
    # three "held" decisions (5, 10, 15 s): one line, the latest reason and the count
    assert text.count("held: risk falling") == 1
    assert "held: risk falling at 15 (x3 since 23:00:05)" in text
    # the proposal: what will happen and when, not "awaiting acknowledgement"
    assert "cue in 9 s unless vetoed (v)" in text and "audio at volume 15 % for 3 s" in text
    assert "awaiting technician acknowledgement" not in text
    assert "nightmare risk 0.42 (0-1)" in text
    # the truth has its own panel, not the event log
    assert "simulator truth" in text and "23:00:03 Arousal, 4 s" in text
    assert "truth: Arousal" not in text
    apply_action(s, view, Action("truth"))
    hidden = _screen(view)
    assert "simulator truth" not in hidden.split("traces:")[0] and "Arousal" not in hidden
    # scale and page keys change the trace panel's title
    assert "traces: last 30 s, filtered; EEG 50, EOG 100, EMG 20 µV/div; 1 div = 1 row" in text
    for key in "+<":
        for action in KeyInterpreter().feed(key):
            apply_action(s, view, action)
    assert "traces: last 20 s, filtered; EEG 20, EOG 50, EMG 10 µV/div" in _screen(view)
    # lights off, then on: events and EDF+ annotations
    apply_action(s, view, Action("lights"))
    assert "lights off at 23:00:21" in _screen(view)
    apply_action(s, view, Action("lights"))
    s.finish("quit")
    assert [a.description for a in rec.annotations if a.description.startswith("Lights")] == [
        "Lights off",
        "Lights on",
    ]
    lights = [e for e in read_events(tmp_path / "e.jsonl") if e["type"] == "lights"]
    assert [(e["state"], e["annotation"]) for e in lights] == [
        ("off", "Lights off"),
        ("on", "Lights on"),
    ]


def test_view_fits_small_terminals():
    s = MonitorSession(_Source(), pipeline=_Pipeline())
    while s.t < 6:
        s.step()
    view = MonitorView(s, 1.0)
    for w, h in ((90, 30), (140, 45), (200, 60)):
        lines = _screen(view, w, h).splitlines()
        assert max(len(ln) for ln in lines) <= w
        assert any("traces: last" in ln for ln in lines)
    s.finish("quit")


def test_view_clock_follows_the_recording_or_the_replayed_file():
    """Clock time: a replayed file's start; without a file the recorder's default, 23:00."""
    import datetime
    from types import SimpleNamespace

    src = _Source()
    s = MonitorSession(src, pipeline=_Pipeline())
    assert MonitorView(s, 1.0).clock(90.0) == "23:01:30"
    src.replay = SimpleNamespace(
        header=SimpleNamespace(start=datetime.datetime(2024, 3, 1, 22, 15))
    )
    view = MonitorView(s, 1.0)
    assert view.clock(3600.0 * 2) == "00:15:00"
    while s.t < 6:
        s.step()
    assert "annotations in the file (t hides)" in _screen(view)
    s.finish("quit")


def test_alert_evidence_in_words_against_baseline():
    from staging.monitor.view import evidence_lines

    ev = {
        "heart_rate": {"value": 75.4, "baseline": 72.3, "unit": "bpm", "evidence": 0.5,
                       "weight": 0.7},
        "emg_tone": {"value": 7.7, "baseline": 0.8, "unit": "uV", "evidence": 2.0, "weight": 2.0},
        "eye_movements": {"value": 10.0, "baseline": 18.0, "unit": "/min", "evidence": -0.4,
                          "weight": 0.2},
    }  # fmt: skip
    assert evidence_lines(ev) == [
        "chin EMG tone 7.7 µV (baseline 0.8 µV)",
        "heart rate 75.4 bpm (baseline 72.3 bpm)",
    ]
    assert evidence_lines(ev, n=1) == ["chin EMG tone 7.7 µV (baseline 0.8 µV)"]
    assert evidence_lines({}) == []
