"""The morning report (staging/night/report.py, ``dreamnet report``)."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import numpy as np
import pytest

from headset import sleeper
from headset.chunk import Annotation
from headset.recorder import Recorder
from staging.cli import main
from staging.errors import StagingError
from staging.night.report import build_report, stages_from_annotations

HYPNO = ["W", "W", "N1", "N2", "N2", "N2", "N3", "N3", "N2", "R", "R", "R", "R", "R", "R", "W"]
NM = (330.0, 90.0)  # nightmare 330-420 s, in the REM period


def _record(path, *, montage=None, scored=True, monitor_events=True, seed=5):
    s = sleeper.Sleeper(
        profile="nightmare-prone", seed=seed, hypnogram=HYPNO, nightmares=[NM], montage=montage
    )
    with Recorder(path, s.ch_names, s.ch_types, s.sfreq) as rec:
        while not s.done:
            rec.write(s.read(2560))  # the chunk's annotations (ground truth) go with it
        if scored:
            for e, st in enumerate(HYPNO):
                rec.annotate(Annotation(30.0 * e, 30.0, f"Scored stage {st}"))
        if monitor_events:
            rec.annotate(Annotation(100.0, 4.0, "Detected arousal"))
            rec.annotate(Annotation(365.0, 0.0, "Nightmare alert"))
            rec.annotate(Annotation(366.0, 0.0, "Intervention: audio"))
    return s


class _Checker(HTMLParser):
    def __init__(self):
        super().__init__()
        self.imgs = []
        self.tags = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "img":
            self.imgs.append(dict(attrs)["src"])


def _png_ok(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    from matplotlib.image import imread

    img = imread(path)
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 300


def test_monitored_session_report(tmp_path):
    f = tmp_path / "night.edf"
    _record(f)
    events = tmp_path / "events.jsonl"
    events.write_text(
        json.dumps(
            {
                "t": 365.0,
                "type": "nightmare_alert",
                "risk": 0.93,
                "evidence": {
                    "heart_rate": {
                        "value": 80.0,
                        "baseline": 62.0,
                        "unit": "bpm",
                        "evidence": 3.0,
                        "weight": 0.7,
                    }
                },
            }
        )  # fmt: skip
        + "\n"
        + json.dumps({"t": 366.0, "type": "intervention", "status": "proposed", "kind": "audio"})
        + "\n"
        + json.dumps({"t": 366.0, "type": "intervention", "status": "sent", "kind": "audio"})
        + "\n"
    )
    res = build_report(f, tmp_path / "out", age_years=8, events_path=events)
    # files: HTML (self-contained), three PNGs, JSON
    assert set(res.figures) == {"hypnogram", "spectrogram", "heart_rate"}
    for p in res.figures.values():
        _png_ok(p)
    page = res.html.read_text()
    chk = _Checker()
    chk.feed(page)
    assert "html" in chk.tags and "table" in chk.tags
    assert len(chk.imgs) == 3 and all(s.startswith("data:image/png;base64,") for s in chk.imgs)
    assert 'src="http' not in page and "href=" not in page  # nothing external
    s = json.loads(res.json.read_text())
    assert s == res.summary
    assert s["sources"]["stages"].startswith("Scored stage")
    assert s["stats"]["tib_min"] == 8.0
    assert s["stats"]["stage_min"]["R"] == 3.0
    assert s["stage_agreement_with_annotations"]["accuracy"] == 1.0
    assert s["sources"]["arousals"] == "Detected arousal annotations"
    assert s["arousals"]["count"] == 1
    alerts = s["nightmares"]["alerts"]
    assert len(alerts) == 1 and alerts[0]["t"] == 365.0
    assert alerts[0]["outcome"] == "awakening"  # W epoch follows within 3 min
    assert alerts[0]["evidence"]["heart_rate"]["value"] == 80.0
    assert s["nightmares"]["cues"] == [{"t": 366.0, "what": "audio"}]
    assert s["nightmares"]["true_episodes"] == [{"onset_s": 330.0, "duration_s": 90.0}]
    assert s["heart_rate"]["beats"] > 400
    assert 40 < s["heart_rate"]["by_stage"]["N2"]["mean_bpm"] < 120
    # a short recording is no night: no recommendation, and it says why
    assert s["recommendations"]["recommendations"] == []
    assert "short_recordings" in s["recommendations"]["not_evaluated"]


def test_recording_without_ecg_and_scores_itself(tmp_path):
    f = tmp_path / "noecg.edf"
    montage = [c for c in sleeper.DEFAULT_MONTAGE if c != "ECG"]
    _record(f, montage=montage, scored=False, monitor_events=False, seed=6)
    out = tmp_path / "out"
    assert main(["report", str(f), "--out", str(out)]) == 0
    s = json.loads((out / "report.json").read_text())
    assert s["sources"]["stages"].startswith("staging.stager.score")
    assert s["sources"]["heart_rate"] == "not available: no ECG channel"
    assert s["heart_rate"] == {}
    assert any("no ECG channel" in n for n in s["notes"])
    assert s["sources"]["nightmare_alerts"] == "NightmareDetector run on this recording"
    assert s["stage_agreement_with_annotations"]["epochs"] == len(HYPNO)
    assert not (out / "heart_rate.png").exists()
    assert "no ECG channel" in (out / "report.html").read_text()


def test_stages_from_annotations():
    anns = [
        Annotation(0.0, 60.0, "Sleep stage W"),
        Annotation(60.0, 30.0, "Sleep stage 2"),
        Annotation(90.0, 30.0, "Scored stage R"),
        Annotation(120.0, 30.0, "Movement time"),
    ]
    assert stages_from_annotations(anns, 5, "Sleep stage ").tolist() == [0, 0, 2, -1, -1]
    assert stages_from_annotations(anns, 5, "Scored stage ").tolist() == [-1, -1, -1, 4, -1]
    assert stages_from_annotations(anns[:1], 2, "Scored stage ") is None


def test_bad_inputs_exit_code_2(tmp_path, capsys):
    bad = tmp_path / "bad.edf"
    bad.write_bytes(b"not an edf at all")
    assert main(["report", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bad.edf" in err
    assert main(["report", str(tmp_path / "missing.edf"), "--out", str(tmp_path / "o")]) == 2
    f = tmp_path / "night.edf"
    _record(f, seed=7)
    ev = tmp_path / "ev.jsonl"
    ev.write_text("{not json\n")
    assert main(["report", str(f), "--out", str(tmp_path / "o"), "--events", str(ev)]) == 2
    assert "line 1" in capsys.readouterr().err
    with pytest.raises(StagingError, match="report.json"):
        build_report(f, tmp_path / "o2", previous=[ev])
    assert main(["report", str(f), "--out", str(tmp_path / "o"), "--age", "-3"]) == 2
    assert np.isfinite(1.0)


def _cli(capsys, argv):
    capsys.readouterr()
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def test_bdf_recording_is_reported(tmp_path, capsys):
    """A 24-bit BDF without annotations is scored by the stager (it 'could not be staged')."""
    from _bdf import write_bdf

    s = sleeper.Sleeper(profile="healthy", seed=3, hypnogram=HYPNO,
                        montage=["EEG C4-M1", "EOG E1-M2", "EMG chin", "ECG"])  # fmt: skip
    chunk = s.read(s.n_samples)
    f = write_bdf(tmp_path / "night.bdf", chunk.data, int(s.sfreq), s.ch_names)
    rc, out, err = _cli(capsys, ["report", str(f), "--out", str(tmp_path / "r")])
    assert rc == 0, err
    summary = json.loads((tmp_path / "r" / "report.json").read_text())
    assert summary["sources"]["stages"].startswith("staging.stager.score")
    assert len(summary["hypnogram"]) == len(HYPNO) and "night.bdf: TST" in out


def test_report_files_are_never_overwritten_silently(tmp_path, capsys):
    f = tmp_path / "night.edf"
    _record(f, seed=8)
    out = tmp_path / "r"
    rc, _, err = _cli(capsys, ["report", str(f), "--out", str(out)])
    assert rc == 0, err
    first = (out / "report.json").read_text()
    rc, _, err = _cli(capsys, ["report", str(f), "--out", str(out)])
    assert rc == 2 and err.count("\n") == 1 and "already exists" in err and "--force" in err
    # yesterday's report.json given as --previous is an input: never an output, even with --force
    prev = ["--previous", str(out / "report.json"), "--force"]
    rc, _, err = _cli(capsys, ["report", str(f), "--out", str(out), *prev])
    assert rc == 2 and "is the input --previous" in err
    assert (out / "report.json").read_text() == first
    rc, _, err = _cli(capsys, ["report", str(f), "--out", str(out), "--force"])
    assert rc == 0, err


def test_truncated_recording_and_unstageable_recording(tmp_path, capsys):
    from headset.edf.header import read_header

    f = tmp_path / "night.edf"
    _record(f, seed=9, scored=False, monitor_events=False)
    h = read_header(f)
    cut = tmp_path / "cut.edf"
    cut.write_bytes(f.read_bytes()[: h.header_bytes + 400 * h.record_bytes + 9])
    rc, _, err = _cli(capsys, ["report", str(cut), "--out", str(tmp_path / "r")])
    assert rc == 2 and err.count("\n") == 1
    assert f"400 of the {h.n_records} data records" in err and "--allow-truncated" in err
    argv = ["report", str(cut), "--out", str(tmp_path / "r"), "--allow-truncated"]
    rc, out, err = _cli(capsys, argv)
    assert rc == 0, err
    assert f"the 400 complete data records of the {h.n_records} declared are used" in out
    summary = json.loads((tmp_path / "r" / "report.json").read_text())
    assert len(summary["hypnogram"]) == 400 // 30
    # a recording without EEG or stage annotations: the line says why it cannot be staged
    import edfio

    sig = edfio.EdfSignal(np.random.default_rng(0).normal(0, 20, 256 * 90), 256, label="Temp")
    edfio.Edf([sig]).write(tmp_path / "nochan.edf")
    rc, _, err = _cli(
        capsys, ["report", str(tmp_path / "nochan.edf"), "--out", str(tmp_path / "n")]
    )
    assert rc == 2 and err.count("\n") == 1
    assert "cannot be staged: no usable EEG channel" in err


def test_technician_notes_are_in_the_report(tmp_path, make_sleeper):
    f = tmp_path / "night.edf"
    s = make_sleeper(2, profile="healthy", hypnogram=HYPNO)
    with Recorder(f, s.ch_names, s.ch_types, s.sfreq) as rec:
        while not s.done:
            rec.write(s.read(2560))
        rec.annotate(Annotation(125.0, 0.0, "Note: child turned over"))
    res = build_report(f, tmp_path / "r")
    assert res.summary["technician_notes"] == [{"t": 125.0, "text": "child turned over"}]
    assert "child turned over" in res.html.read_text()
    # a recording without them: the event stream's notes are used
    g = tmp_path / "plain.edf"
    _record(g, seed=4)
    ev = tmp_path / "ev.jsonl"
    ev.write_text('{"t": 12.5, "type": "note", "text": "lights flickering"}\n')
    res = build_report(g, tmp_path / "r2", events_path=ev)
    assert res.summary["technician_notes"] == [{"t": 12.5, "text": "lights flickering"}]
