"""Tests of the shared contracts: Chunk, stage codes, fault specs, validation, CLI plumbing."""

import importlib

import numpy as np
import pytest

from dsp import flags
from dsp.docs import docdict, fill_doc
from dsp.validate import (
    as_signal,
    check_ch_types,
    check_int,
    check_option,
    check_positive,
    validate_type,
)
from headset import chunk as chunk_module
from headset.chunk import FLAG_GAP, Annotation, Chunk
from headset.errors import HeadsetError
from headset.faults import FAULT_HELP, FaultConfig, faults_help, parse_faults
from headset.stages import (
    N2,
    N3,
    UNSCORED,
    R,
    W,
    check_stage,
    check_stages,
    parse_stage_annotation,
    stage_name,
)
from staging.cli import main
from staging.cli._common import parse_duration


def _chunk(n_ch=2, n=4):
    return Chunk(
        data=np.zeros((n_ch, n)),
        first_sample=256,
        sfreq=256.0,
        ch_names=tuple(f"C{i}" for i in range(n_ch)),
        ch_types=("eeg",) * n_ch,
        flags=np.zeros((n_ch, n), np.uint8),
    )


def test_chunk_properties():
    c = _chunk()
    assert c.n_samples == 4
    assert c.t0 == 1.0
    assert c.stop_sample == 260


def test_chunk_pieces_and_concatenation():
    c = _chunk(n=10)
    c = Chunk(
        np.arange(20.0).reshape(2, 10), 256, 256.0, c.ch_names, c.ch_types,
        np.eye(2, 10, 3, dtype=np.uint8), (Annotation(1.0, 0.0, "Note"),),
    )  # fmt: skip
    pieces = [c.piece(0, 3), c.piece(3, 7), c.piece(7)]
    assert [p.first_sample for p in pieces] == [256, 259, 263]
    assert [len(p.annotations) for p in pieces] == [1, 0, 0]  # never repeated or lost
    whole = Chunk.concatenate(pieces)
    np.testing.assert_array_equal(whole.data, c.data)
    np.testing.assert_array_equal(whole.flags, c.flags)
    assert (whole.first_sample, whole.annotations) == (256, c.annotations)
    assert Chunk.concatenate([c]) is c


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"data": np.zeros(4)}, "2-D"),
        ({"ch_names": ("a",)}, "2 channels but 1 names"),
        ({"flags": np.zeros((2, 3), np.uint8)}, "flags shape"),
    ],
)
def test_chunk_rejects_inconsistent_fields(kwargs, match):
    base = dict(
        data=np.zeros((2, 4)),
        first_sample=0,
        sfreq=256.0,
        ch_names=("a", "b"),
        ch_types=("eeg", "eeg"),
        flags=np.full((2, 4), FLAG_GAP),
    )
    base.update(kwargs)
    with pytest.raises(ValueError, match=match):
        Chunk(**base)


def test_sample_flags_are_defined_once():
    names = ("FLAG_GAP", "FLAG_LEAD_OFF", "FLAG_SATURATED", "FLAG_CORRUPT", "BAD_FLAGS")
    for name in names:  # headset.chunk re-exports the very objects of dsp.flags
        assert getattr(chunk_module, name) is getattr(flags, name)
    bits = [int(getattr(flags, n)) for n in names[:-1]]
    assert bits == [1, 2, 4, 8]  # the wire and file contract: one distinct bit each
    assert int(flags.BAD_FLAGS) == 15 and flags.BAD_FLAGS.dtype == np.uint8


@pytest.mark.parametrize(
    "text, stage",
    [
        ("Sleep stage W", W),
        ("Sleep stage N2", N2),
        ("Sleep stage 3", N3),
        ("Sleep stage 4", N3),
        ("Sleep stage R", R),
        ("Sleep stage ?", UNSCORED),
        ("Scored stage N3", N3),
        ("Movement time", UNSCORED),
        ("Nightmare", None),
        ("Sleep stage X", None),
    ],
)
def test_parse_stage_annotation(text, stage):
    assert parse_stage_annotation(text) == stage


def test_stage_name():
    assert [stage_name(s) for s in (-1, 0, 1, 2, 3, 4)] == ["?", "W", "N1", "N2", "N3", "R"]
    with pytest.raises(ValueError, match="stage must be"):
        stage_name(7)


def test_stage_checks():
    assert [check_stage(v) for v in (-1, 0, np.int8(4), 2.0, np.float32(3))] == [-1, 0, 4, 2, 3]
    for bad in (5, -2, 2.5, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="stage must be a stage code -1..4"):
            check_stage(bad)
    for bad in (True, "N2", None):
        with pytest.raises(TypeError, match="stage must be an integer stage code"):
            check_stage(bad)
    with pytest.raises(ValueError, match=r"epoch_stage must be a stage code 0\.\.4 \(W=0, .*R=4\)"):
        check_stage(-1, "epoch_stage", unscored=False)
    h = check_stages([0, 1, 2.0, -1, 4])
    assert h.dtype == np.int8 and list(h) == [0, 1, 2, -1, 4]
    for bad, exc, match in [
        ([[0, 1]], ValueError, "1-D"),
        ([], ValueError, "empty"),
        (["W"], TypeError, "integer stage codes"),
        ([0.5], ValueError, "fractions"),
        ([0, 1, 7], ValueError, "got 7 at epoch 2"),
    ]:
        with pytest.raises(exc, match=match):
            check_stages(bad)


def test_parse_faults():
    cfg = parse_faults("loss=0.01, corrupt=0.001,disconnect=3,leadoff=1")
    assert cfg == FaultConfig(loss=0.01, corrupt=0.001, disconnect=3, leadoff=1)
    assert cfg.any_packet_fault
    assert parse_faults(None) == FaultConfig()
    assert not parse_faults("").any_packet_fault
    for name in FAULT_HELP:
        assert name in faults_help()


@pytest.mark.parametrize(
    "spec, match",
    [
        ("bogus=1", "unknown fault 'bogus'"),
        ("loss", "needs a value"),
        ("loss=abc", "needs a number"),
        ("loss=2", "probability"),
        ("pops=-1", "non-negative"),
        ("mains_freq=55", "50 or 60"),
    ],
)
def test_parse_faults_errors(spec, match):
    with pytest.raises(HeadsetError, match=match):
        parse_faults(spec)


def test_validation_helpers():
    check_option("phase", "zero", ("zero", "forward"))
    with pytest.raises(ValueError, match="Allowed values are 'zero', 'forward', but got 'foo'"):
        check_option("phase", "foo", ("zero", "forward"))
    with pytest.raises(TypeError, match="sfreq must be float or int, got str"):
        validate_type("sfreq", "256", (float, int))
    assert check_positive("sfreq", 256) == 256.0
    for bad in (0, -1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="sfreq must be a positive"):
            check_positive("sfreq", bad)
    with pytest.raises(TypeError):
        check_positive("sfreq", "1")


@pytest.mark.parametrize(
    "value, kwargs, exc, match",
    [
        (0, {}, ValueError, "n must be a positive int, got 0"),
        (-1, {"low": 0}, ValueError, "n must be a non-negative int, got -1"),
        (11, {"high": 10}, ValueError, "n must be an int between 1 and 10, got 11"),
        (1, {"low": 2}, ValueError, "n must be an int >= 2, got 1"),
        (5, {"low": None, "high": 4}, ValueError, "n must be an int <= 4, got 5"),
        (True, {}, TypeError, "n must be an int, got bool"),
        (2.0, {}, TypeError, "n must be an int, got float"),
    ],
)
def test_check_int_rejects(value, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        check_int("n", value, **kwargs)


def test_check_int_accepts_numpy_integers():
    assert check_int("n", np.int16(7), high=7) == 7 and type(check_int("n", np.int64(3))) is int
    assert check_int("n", -5, low=None) == -5


def test_as_signal_and_ch_types():
    assert as_signal([True, False]).dtype == np.float64
    assert as_signal(np.arange(3, dtype=np.int16)).dtype == np.int16  # kept, no copy needed
    for bad, exc, match in [
        (None, TypeError, "x must be a numeric array, got None"),
        ("abc", TypeError, "numeric array"),
        (np.zeros(3, complex), TypeError, "real numeric array, got dtype complex128"),
        (3.0, ValueError, "at least one dimension"),
    ]:
        with pytest.raises(exc, match=match):
            as_signal(bad)
    assert check_ch_types(["eeg", "emg"], 2) == ("eeg", "emg")
    with pytest.raises(TypeError, match="sequence of str"):
        check_ch_types("eeg")
    with pytest.raises(TypeError, match="ch_types item must be str, got int"):
        check_ch_types(["eeg", 3])
    with pytest.raises(ValueError, match=r"one type per channel \(3\), got 2"):
        check_ch_types(["eeg", "eog"], 3)
    with pytest.raises(ValueError, match="empty"):
        check_ch_types([])


def _public_docstrings():
    for mod in ("ecg", "filterbank", "iir", "quality", "resample", "spectral", "validate"):
        obj = importlib.import_module(f"dsp.{mod}")
        for name in obj.__all__:
            item = getattr(obj, name)
            yield f"{mod}.{name}", getattr(item, "__doc__", None) or ""
            for attr, member in vars(item).items() if isinstance(item, type) else ():
                if callable(member) and not attr.startswith("_"):
                    yield f"{mod}.{name}.{attr}", member.__doc__ or ""


def test_docdict_is_filled_everywhere_and_every_entry_is_used():
    docs = dict(_public_docstrings())
    assert "spectral.welch_psd" in docs and "iir.SOSFilter" in docs
    leftover = [name for name, doc in docs.items() if "%(" in doc]
    assert not leftover, leftover
    text = "\n".join(docs.values())
    for key, entry in docdict.items():  # no dead entry: each one appears in some docstring
        assert entry.strip().splitlines()[0] in text, key


def test_fill_doc_indents_and_rejects_unknown_keys():
    def f():
        """Do nothing.

        Parameters
        ----------
        %(sfreq)s
        """

    fill_doc(f)
    assert "\n        sfreq : float\n            Sampling rate in Hz" in f.__doc__

    def g():
        """Do nothing.

        %(no_such_key)s
        """

    with pytest.raises(KeyError, match="no entry 'no_such_key'"):
        fill_doc(g)


@pytest.mark.parametrize(
    "text, seconds", [("8h", 28800), ("90m", 5400), ("1h30m", 5400), ("45s", 45), ("12", 12)]
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "abc", "0", "-5m", "h"])
def test_parse_duration_rejects(text):
    import argparse

    with pytest.raises(argparse.ArgumentTypeError):
        parse_duration(text)


def test_cli_usage_errors_are_one_line(capsys):
    assert main(["no-such-command"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("dreamnet:") and "\n" not in err


def test_cli_exit_2_only_for_input_errors_a_bug_keeps_its_traceback(monkeypatch, capsys):
    from staging.cli import bench
    from staging.errors import StagingError

    def bad_input(args):
        raise StagingError("--out x: already exists")

    monkeypatch.setattr(bench, "run", bad_input)
    assert main(["bench"]) == 2
    assert capsys.readouterr().err.strip() == "dreamnet: error: --out x: already exists"

    for bug in (ValueError("a bug"), TypeError("another bug")):

        def buggy(args, bug=bug):
            raise bug

        monkeypatch.setattr(bench, "run", buggy)
        with pytest.raises(type(bug), match="bug"):  # not turned into "bad input", exit 2
            main(["bench"])
