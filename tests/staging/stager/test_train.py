"""Training on labelled EDF+ recordings (staging/train.py, ``dreamnet train``)."""

from __future__ import annotations

import numpy as np
import pytest
from _staging_sim import simulated, to_raw

from headset.stages import STAGE_NAMES
from staging.cli import main
from staging.stager.evaluate import cohen_kappa, stage_labels
from staging.stager.model import StagingModel
from staging.stager.train import edf_recording


def _write_edf(path, data, sf, names, types, stages):
    import mne

    raw = to_raw(data, sf, names, types)
    onsets = np.arange(stages.size) * 30.0
    texts = [f"Sleep stage {STAGE_NAMES[s]}" for s in stages]
    raw.set_annotations(mne.Annotations(onsets, [30.0] * stages.size, texts))
    mne.export.export_raw(path, raw, fmt="edf", verbose="error")
    return path


def test_stage_labels_from_annotations():
    ann = [(0.0, 60.0, "Sleep stage W"), (60.0, 30.0, "Sleep stage 4"), (90.0, 30.0, "Arousal")]
    ann.append((120.0, 30.0, "Movement time"))
    assert stage_labels(ann, 5).tolist() == [0, 0, 3, -1, -1]


def test_edf_recording_and_train_command(tmp_path):
    data, sf, names, types, truth = simulated()
    edf = _write_edf(tmp_path / "scored.edf", data, sf, names, types, truth)
    rec = edf_recording(edf, trim_wake_min=-1)
    assert rec.labels.tolist() == truth.tolist()
    assert rec.info["channels"]["eeg"] == "EEG C4-M1"
    out = tmp_path / "lab_model"
    argv = ["train", "--nights", "0", "--val-nights", "0", "--epochs", "3", "--edf", str(edf)]
    assert main([*argv, "--out", str(out)]) == 0
    assert sorted(f.name for f in out.iterdir()) == ["dreamnet_stager.json", "dreamnet_stager.npz"]
    m = StagingModel.load(out / "dreamnet_stager")
    assert m.meta["trained_on"]["edf"][0]["file"] == "scored.edf"
    from staging import score

    hyp = score(to_raw(data, sf, names, types), model=m)
    assert cohen_kappa(truth, hyp.stages) > 0.3  # trained on 1 h for 3 passes: above chance


def test_train_without_data_is_an_error(tmp_path, capsys):
    assert main(["train", "--nights", "0", "--val-nights", "0", "--out", str(tmp_path / "m")]) == 2
    assert "nothing to train on" in capsys.readouterr().err


def test_edf_without_stages_is_an_error(tmp_path):
    import mne

    data, sf, names, types, _ = simulated()
    path = tmp_path / "plain.edf"
    mne.export.export_raw(path, to_raw(data[:, : int(sf * 120)], sf, names, types), fmt="edf")
    from staging.errors import StagingError

    with pytest.raises(StagingError, match="no 'Sleep stage' annotations"):
        edf_recording(path)


def test_recalibrate_refits_the_temperatures_and_only_the_json(tmp_path, capsys):
    import json
    import shutil

    from staging.stager.model import MODEL_DIR

    out = tmp_path / "models"
    out.mkdir()
    for ext in (".npz", ".json"):
        shutil.copy(MODEL_DIR / f"simulated-only{ext}", out / f"simulated-only{ext}")
    npz_before = (out / "simulated-only.npz").read_bytes()
    before = json.loads((out / "simulated-only.json").read_text())
    argv = ["train", "--recalibrate", "simulated-only", "--val-nights", "1", "--duration", "1h"]
    assert main([*argv, "--out", str(out)]) == 2  # the file exists: refused without --force
    assert "--force" in capsys.readouterr().err
    assert main([*argv, "--out", str(out), "--force"]) == 0
    after = json.loads((out / "simulated-only.json").read_text())
    assert (out / "simulated-only.npz").read_bytes() == npz_before
    assert after["calibration"]["validation_nights"] == ["sim:healthy:5000"]
    assert after["gamma"] == before["gamma"]
    assert after["temperature"] != before["temperature"]
    assert all(0.5 <= t <= 8.0 for t in after["temperature"].values())
    # the temperature is the lowest-NLL one: the model's own fit gives it back
    from staging.stager.train import _fit_temperature, simulate_recording

    m = StagingModel.load(out / "simulated-only")
    val = [simulate_recording(5000, "healthy", 3600.0)]
    assert _fit_temperature(m, val, "online") == after["temperature"]["online"]
    assert main([*argv[:3], "--val-nights", "0", "--out", str(out), "--force"]) == 2
    assert "needs validation nights" in capsys.readouterr().err
