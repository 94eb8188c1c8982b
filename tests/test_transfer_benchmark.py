"""Smoke test of benchmarks/transfer.py (issue 11, item 1) on a stand-in night.

The real Sleep-EDF night is never needed: a short simulated night written as Sleep-EDF files (the
same file and channel names, an annotations-only hypnogram) stands in for it, so the whole
``--quick`` path runs whether or not ``../shared/data`` exists.
"""

import csv
import importlib.util
import sys

import numpy as np
import pytest
from _constants import REPO
from edfio import Edf, EdfAnnotation, EdfSignal

from headset.sleeper import Sleeper
from headset.stages import STAGE_NAMES
from staging.stager.features import COLUMN_NAMES, INPUT_NAMES


@pytest.fixture(scope="module")
def transfer():
    spec = importlib.util.spec_from_file_location("transfer_bench", REPO / "benchmarks/transfer.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclasses look their module up there
    spec.loader.exec_module(mod)
    yield mod
    del sys.modules[spec.name]


@pytest.fixture(scope="module")
def stand_in(tmp_path_factory, transfer):
    """A 1-h simulated night written as SC4001E0-PSG.edf + SC4001EC-Hypnogram.edf."""
    d = tmp_path_factory.mktemp("sleep-edf")
    s = Sleeper(
        profile="healthy",
        seed=7900,
        duration_s=3600.0,
        sfreq=100.0,
        montage=("EEG C4-M1", "EEG O2-M1", "EOG E1-M2", "EOG E2-M2"),
    )
    x = s.read(s.n_samples).data.astype(np.float64)
    signals = [
        EdfSignal(x[0], 100.0, label="EEG Fpz-Cz", physical_dimension="uV"),
        EdfSignal(x[1], 100.0, label="EEG Pz-Oz", physical_dimension="uV"),
        EdfSignal(x[2] - x[3], 100.0, label="EOG horizontal", physical_dimension="uV"),
    ]
    Edf(signals).write(d / transfer.PSG_NAME)
    rk = {"W": "W", "N1": "1", "N2": "2", "N3": "4", "R": "R"}
    notes = [
        EdfAnnotation(30.0 * k, 30.0, f"Sleep stage {rk[STAGE_NAMES[st]]}")
        for k, st in enumerate(s.hypnogram)
    ]
    Edf([], annotations=notes).write(d / transfer.HYPNOGRAM_NAME)
    return d


def test_without_the_real_night_it_says_so_and_exits_0(transfer, tmp_path, capsys):
    out = tmp_path / "out"
    assert transfer.main(["--quick", "--data", str(tmp_path / "absent"), "--out", str(out)]) == 0
    assert "real night not found" in capsys.readouterr().out
    assert not out.exists()


def test_quick_run_writes_ranked_shifts_importance_and_spectra(
    transfer, stand_in, tmp_path, capsys
):
    out = tmp_path / "out"
    assert transfer.main(["--quick", "--data", str(stand_in), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    for heading in ("Most shifted model inputs", "Permutation importance", "Conclusion"):
        assert heading in text
    with (out / "transfer_shift.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    for col in ("lead", "space", "feature", "stage", "smd", "ks_d", "rank"):
        assert col in rows[0]
    frontal = {(r["space"], r["feature"]) for r in rows if r["lead"] == "frontal"}
    assert frontal == {("input", n) for n in INPUT_NAMES} | {("raw", n) for n in COLUMN_NAMES}
    assert {r["stage"] for r in rows} == set(STAGE_NAMES)
    with (out / "transfer_importance.csv").open() as fh:
        imp = list(csv.DictReader(fh))
    assert imp and all(np.isfinite(float(r["kappa_drop"])) for r in imp)
    png = out / "transfer_spectra.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_refuses_to_overwrite_without_force(transfer, stand_in, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "transfer_shift.csv").write_text("earlier run\n")
    assert transfer.main(["--quick", "--data", str(stand_in), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "transfer_shift.csv exists" in err[0] and "--force" in err[0]
    assert (out / "transfer_shift.csv").read_text() == "earlier run\n"


@pytest.mark.parametrize(
    "argv, word", [(["--nights", "0"], "--nights"), (["--model", "no/such/model"], "--model")]
)
def test_bad_arguments_exit_2_with_one_line(transfer, stand_in, tmp_path, capsys, argv, word):
    code = transfer.main([*argv, "--data", str(stand_in), "--out", str(tmp_path / "o")])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and word in err[0]
