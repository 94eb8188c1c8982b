"""The morning report (staging/night/report.py, ``dreamnet report``)."""

from __future__ import annotations

import html
import json
import re
from html.parser import HTMLParser

import numpy as np
import pytest
from _constants import REPO

from headset import sleeper
from headset.chunk import Annotation
from headset.recorder import Recorder
from staging.cli import main
from staging.errors import StagingError
from staging.night.report import build_report, stages_from_annotations

HYPNO = ["W", "W", "N1", "N2", "N2", "N2", "N3", "N3", "N2", "R", "R", "R", "R", "R", "R", "W"]
NM = (330.0, 90.0)  # nightmare 330-420 s, in the REM period


def _record(path, *, montage=None, scored=True, monitor_events=True, seed=5, faults=None,
            extra=()):  # fmt: skip
    s = sleeper.Sleeper(profile="nightmare-prone", seed=seed, hypnogram=HYPNO, nightmares=[NM],
                        montage=montage, faults=faults)  # fmt: skip
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
        for a in extra:
            rec.annotate(a)
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


def _section(page, sid):
    m = re.search(rf'<section id="{sid}">(.*?)</section>', page, re.S)
    assert m, f"section {sid} missing"
    return _text(m.group(1))


def _text(page):
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))


def _stream(path):
    events = [
        {"t": 365.0, "type": "nightmare_alert", "risk": 0.93, "stage": "R",
         "evidence": {"heart_rate": {"value": 80.0, "baseline": 62.0, "unit": "bpm",
                                     "evidence": 3.0, "weight": 0.7},
                      "emg_tone": {"value": 4.2, "baseline": 1.5, "unit": "uV",
                                   "evidence": 1.5, "weight": 2.0}}},
        {"t": 366.0, "type": "intervention", "status": "proposed", "kind": "audio", "level": 0.15},
        {"t": 366.0, "type": "approve", "kind": "audio", "by": "technician"},
        {"t": 366.0, "type": "intervention", "status": "sent", "kind": "audio", "level": 0.15},
        {"t": 380.0, "type": "intervention", "status": "proposed", "kind": "audio", "level": 0.35},
        {"t": 381.0, "type": "veto", "kind": "audio", "level": 0.35},
        {"t": 400.0, "type": "cue_outcome", "kind": "audio", "level": 0.15, "sent_t": 366.0,
         "outcome": "settled"},
    ]  # fmt: skip
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return path


def test_monitored_session_report(tmp_path):
    f = tmp_path / "night.edf"
    _record(f)
    res = build_report(f, tmp_path / "out", age_years=8, events_path=_stream(tmp_path / "e.jsonl"))
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
    assert s["sources"]["stages"].startswith("dreamnet online stager")
    assert s["stats"]["tib_min"] == 8.0
    assert s["stats"]["stage_min"]["R"] == 3.0
    assert s["stats"]["stage_shifts"] == 6  # W-N1-N2-N3-N2-R-W
    assert s["stats"]["stage_latency_min"] == {"N1": 1.0, "N2": 1.5, "N3": 3.0, "R": 4.5}
    agree = s["stage_agreement_with_annotations"]
    assert agree["accuracy"] == 1.0 and "simulator's ground truth" in agree["reference"]
    assert s["sources"]["arousals"].startswith("Detected arousal annotations")
    assert s["arousals"]["count"] == 1
    alerts = s["nightmares"]["alerts"]
    assert len(alerts) == 1 and alerts[0]["t"] == 365.0 and alerts[0]["stage"] == "R"
    assert alerts[0]["stage_when_raised"] == "R"
    assert alerts[0]["outcome"] == "awakening"  # W epoch follows within 3 min
    assert alerts[0]["evidence"]["heart_rate"]["value"] == 80.0
    assert s["nightmares"]["true_episodes"] == [{"onset_s": 330.0, "duration_s": 90.0}]
    assert s["heart_rate"]["beats"] > 400
    assert 40 < s["heart_rate"]["by_stage"]["N2"]["mean_bpm"] < 120
    # a short recording is no night: no recommendation, and it says why
    assert s["recommendations"]["recommendations"] == []
    assert "short_recordings" in s["recommendations"]["not_evaluated"]
    # the page: clock times from the header's start (23:00:00), titles and words, not code names
    text = _text(page)
    assert "Hypnogram, dreamnet online stager" in page and "staging.score" not in page
    ev = _section(page, "nightmare-alerts")
    assert "23:06:05 REM REM 0.93" in ev  # 365 s after 23:00:00
    assert "heart rate 80 beats/min (calm-REM baseline 62 beats/min)" in ev
    assert "chin muscle tone (EMG RMS, 20-100 Hz) 4.2 µV (calm-REM baseline 1.5 µV)" in ev
    assert "emg_tone" not in text and "heart_rate" not in text and " uV" not in text
    assert "1 followed by waking within 3 minutes, 0 settled" in ev
    assert "simulator's ground truth" in _section(page, "glance")
    assert "Stage shifts (changes between scored epochs) 6" in _section(page, "glance")
    for sid in ("not-measured",):
        assert "SpO2" in _section(page, sid) and "limb movements" in _section(page, sid)
    for name in res.figures:
        assert name not in re.findall(r"<figcaption>(.*?)</figcaption>", page, re.S)


def test_interventions_notes_and_quality_sections(tmp_path):
    """Every intervention, note and lead-off of the recording is in the report, with numbers."""
    from headset.replay import Replay

    f = tmp_path / "night.edf"
    _record(f, extra=[
        Annotation(380.0, 0.0, "Intervention vetoed: audio"),
        Annotation(395.0, 0.0, "Intervention failed: vibration"),
        Annotation(125.0, 0.0, "Note: child turned over"),
        Annotation(200.0, 60.0, "Lead off: EEG C4-M1"),
        Annotation(300.0, 2.0, "Gap"),
    ])  # fmt: skip
    res = build_report(f, tmp_path / "out", events_path=_stream(tmp_path / "e.jsonl"))
    s, page = res.summary, res.html.read_text()
    with Replay(f) as rep:
        n_iv = sum(a.description.startswith("Intervention") for a in rep.annotations)
    assert n_iv == 3
    ivs = s["interventions"]
    assert len(ivs) == n_iv
    assert [(i["t"], i["cue"], i["status"]) for i in ivs] == [
        (366.0, "audio", "sent"), (380.0, "audio", "vetoed"), (395.0, "vibration", "failed")
    ]  # fmt: skip
    sent = ivs[0]
    assert sent["level"] == 0.15 and sent["stage"] == "R"
    assert sent["approval"] == "approved by the technician"
    assert sent["outcome"] == "settled (monitor)"
    assert ivs[1]["approval"] == "vetoed by the technician" and ivs[1]["outcome"] == "not sent"
    sec = _section(page, "interventions")
    assert "3 interventions (1 sent, 1 vetoed, 1 failed)" in sec
    assert "23:06:06 audio sent 0.15 REM approved by the technician settled (monitor)" in sec
    assert "23:06:20 audio vetoed" in sec and "23:06:35 vibration failed" in sec
    assert "23:02:05: child turned over" in _section(page, "technician-notes")
    # signal quality: the lead-off (200-260 s) spoils epochs 6-8 of C4, the gap epoch 10 of all
    q = {c["channel"]: c for c in s["signal_quality"]["channels"]}
    c4, f4 = q["EEG C4-M1"], q["EEG F4-M1"]
    assert (c4["lead_off_episodes"], c4["lead_off_min"]) == (1, 1.0)
    assert c4["lead_off_epochs"] == 3 and f4["lead_off_epochs"] == 0
    assert all(c["gap_epochs"] == 1 for c in q.values())
    assert c4["usable_min"] == f4["usable_min"] - 1.5 and f4["usable_min"] <= 7.5
    assert s["signal_quality"]["gaps"] == 1 and s["signal_quality"]["gap_s"] == 2.0
    sec = _section(page, "signal-quality")
    assert "1 gap in the data (2.0 s in total)" in sec
    assert "EEG spectrogram, EEG C4-M1" in page  # the spectrogram's channel went off:
    assert "EEG C4-M1 was off its electrode from 23:03 for 1 min (dark band)" in page
    assert f"EEG C4-M1 {c4['usable_min']:.1f} min of 8.0 min 1 episode, 1.0 min" in sec


def test_pops_lights_and_no_agreement_with_the_stages_used(tmp_path):
    from headset.faults import FaultConfig
    from headset.replay import Replay

    f = tmp_path / "night.edf"
    _record(f, faults=FaultConfig(pops=120.0), extra=[
        Annotation(60.0, 0.0, "Lights off"), Annotation(450.0, 0.0, "Lights on"),
    ])  # fmt: skip
    res = build_report(f, tmp_path / "out", stages="true")
    s, page = res.summary, res.html.read_text()
    with Replay(f) as rep:
        pops = [a.description[15:] for a in rep.annotations
                if a.description.startswith("Electrode pop: ")]  # fmt: skip
    assert pops  # the check below is not vacuous
    got = {c["channel"]: c["pops"] for c in s["signal_quality"]["channels"]}
    assert got == {ch: pops.count(ch) for ch in got}
    # lights off 60 s .. lights on 450 s: epochs 2..14 (N1 N2 N2 N2 N3 N3 N2 R R R R R R)
    assert s["stats"]["tib_min"] == 6.5 and s["stats"]["sol_min"] == 0.0
    assert s["stats"]["stage_shifts"] == 4
    assert s["stats"]["stage_latency_min"]["R"] == 3.5
    assert "lights off 23:01:00" in page and "lights on 23:07:30" in page
    # the stages used are the annotations themselves: no "agreement" with them
    assert s["stage_agreement_with_annotations"] is None
    assert "Independent check" not in page


def test_recording_without_ecg_and_scores_itself(tmp_path):
    f = tmp_path / "noecg.edf"
    montage = [c for c in sleeper.DEFAULT_MONTAGE if c != "ECG"]
    _record(f, montage=montage, scored=False, monitor_events=False, seed=6)
    out = tmp_path / "out"
    assert main(["report", str(f), "--out", str(out)]) == 0
    s = json.loads((out / "report.json").read_text())
    assert s["sources"]["stages"].startswith("dreamnet offline stager")
    assert s["sources"]["heart_rate"] == "not available: no ECG channel"
    assert s["heart_rate"] == {}
    assert any("no ECG channel" in n for n in s["notes"])
    assert s["sources"]["nightmare_alerts"] == "dreamnet nightmare detector run on this recording"
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
    with pytest.raises(ValueError, match="'mains' parameter.*60.0, None, but got 55"):
        build_report(f, tmp_path / "o3", mains=55)
    with pytest.raises(ValueError, match="'stages' parameter"):
        build_report(f, tmp_path / "o3", stages="best")
    assert not (tmp_path / "o3").exists()
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
    assert summary["sources"]["stages"].startswith("dreamnet offline stager")
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


def test_page_in_a_headless_browser(tmp_path):
    """Chromium renders the page of a seeded night: every figure loads, every section is there."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("report_page", REPO / "benchmarks/report_page.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    f = tmp_path / "night.edf"
    _record(f, extra=[Annotation(125.0, 0.0, "Note: child turned over")])
    res = build_report(f, tmp_path / "out", events_path=_stream(tmp_path / "e.jsonl"))
    # without a browser too: every figure is a PNG that decodes, every section is on the page
    import base64
    import io
    import re

    from matplotlib.image import imread

    page = res.html.read_text()
    pngs = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(pngs) == 3
    assert all(imread(io.BytesIO(base64.b64decode(b)), format="png").size > 0 for b in pngs)
    assert all(f'id="{s}"' in page for s in mod.SECTIONS)
    exe = mod.find_chromium()
    if exe is None:  # the browser part needs Chromium (apt-get install -y chromium)
        return
    seen = mod.check_page(res.html, tmp_path / "page.png", exe)
    assert seen["problems"] == []
    assert len(seen["imgs"]) == 3 and set(mod.SECTIONS) <= set(seen["ids"])
    shot = imread(tmp_path / "page.png")
    assert shot.shape[1] == 1200 and shot.shape[0] >= seen["height"]
    # a page whose figure is broken is caught
    broken = tmp_path / "broken.html"
    broken.write_text(
        res.html.read_text().replace("data:image/png;base64,", "data:image/png;base64,AA", 1)
    )
    assert any(
        "did not load" in p for p in mod.check_page(broken, tmp_path / "b.png", exe)["problems"]
    )


def test_not_measured_follows_the_channels():
    from staging.night.report import MEASURES, not_measured

    psg = ["EEG Fpz-Cz", "Resp oro-nasal", "EMG submental", "Temp rectal"]
    lines = not_measured(psg, ["eeg", "misc", "emg", "misc"])
    assert not any(line.startswith("respiration") for line in lines)
    assert [line.split()[0].strip(":") for line in lines] == [
        "oxygen",
        "leg",
        "ECG",
        "body",
        "snoring",
    ]
    full = ["EEG C4", "ECG", "Leg L", "SpO2", "Thorax", "Position", "Snore"]
    assert not_measured(full, ["eeg", "ecg"] + ["misc"] * 5) == []
    assert len(not_measured(["EEG C4"], ["eeg"])) == len(MEASURES)


def test_agreement_only_with_an_independent_scoring(tmp_path):
    """A scorer's stages are compared with the stager's, unless the stager learned this file."""
    import dataclasses

    paths = [tmp_path / "scored.edf", tmp_path / "SC4001E0-PSG.edf"]  # the second: training data
    for f in paths:
        s = sleeper.Sleeper(profile="healthy", seed=11, hypnogram=HYPNO)
        with Recorder(f, s.ch_names, s.ch_types, s.sfreq) as rec:
            while not s.done:  # the signals only: no simulator truth in the file
                rec.write(dataclasses.replace(s.read(2560), annotations=()))
            for e, st in enumerate(HYPNO):
                rec.annotate(Annotation(30.0 * e, 30.0, f"Sleep stage {st}"))
    res = build_report(paths[0], tmp_path / "a")
    agree = res.summary["stage_agreement_with_annotations"]
    assert not res.summary["simulated"] and agree["epochs"] == len(HYPNO)
    assert agree["reference"].startswith("the Sleep stage annotations in the file (a scorer's")
    assert "Independent check" in res.html.read_text()
    res = build_report(paths[1], tmp_path / "b")
    assert res.summary["stage_agreement_with_annotations"] is None
    assert any("training data" in n for n in res.summary["notes"])
    assert "Independent check" not in res.html.read_text()
