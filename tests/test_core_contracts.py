"""Tests of the shared contracts: Chunk, stage codes, fault specs, validation, CLI plumbing."""

import numpy as np
import pytest

from dsp._validate import check_option, check_positive, validate_type
from headset.chunk import FLAG_GAP, Annotation, Chunk
from headset.errors import HeadsetError
from headset.faults import FAULT_HELP, FaultConfig, faults_help, parse_faults
from headset.stages import N2, N3, UNSCORED, R, W, parse_stage_annotation, stage_name
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
