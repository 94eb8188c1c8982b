"""The CLI's output rules: no silent overwrite, no output onto an input, escaped names."""

from __future__ import annotations

import os

import pytest

from staging.cli import main
from staging.errors import StagingError
from staging.outputs import check_outputs, partial_output, printable


def test_an_output_that_is_an_input_is_refused_by_any_name(tmp_path, monkeypatch):
    src = tmp_path / "night.edf"
    src.write_bytes(b"data")
    (tmp_path / "sym.edf").symlink_to(src)
    os.link(src, tmp_path / "hard.edf")
    (tmp_path / "d").mkdir()
    monkeypatch.chdir(tmp_path / "d")
    for name in (
        src,
        tmp_path / "sym.edf",
        tmp_path / "hard.edf",
        "../night.edf",
        "./../d/../night.edf",
    ):
        with pytest.raises(StagingError, match="is the input --source"):
            check_outputs([("--record", name)], [("--source", src)], force=True)
    # the input given through a link is found too
    with pytest.raises(StagingError, match="is the input --source"):
        check_outputs([("--record", src)], [("--source", tmp_path / "sym.edf")], force=True)
    assert src.read_bytes() == b"data"


def test_existing_outputs_and_two_outputs_on_one_file(tmp_path):
    out = tmp_path / "a.csv"
    check_outputs([("--out", out)])  # new: fine
    out.write_text("x")
    with pytest.raises(StagingError, match=r"--out .*a.csv: already exists \(--force"):
        check_outputs([("--out", out)])
    check_outputs([("--out", out)], force=True)
    dangling = tmp_path / "dangling.edf"
    dangling.symlink_to(tmp_path / "nowhere.edf")
    with pytest.raises(StagingError, match="already exists"):
        check_outputs([("--record", dangling)])
    new = tmp_path / "new.edf"
    with pytest.raises(StagingError, match="is also the output --record"):
        check_outputs([("--record", new), ("--events", new)])
    check_outputs([("--events", "-"), ("--record", None)])  # stdout and unset are no files


def test_printable_escapes_control_characters_only():
    assert printable("night µV é.edf") == "night µV é.edf"
    assert printable("a\nb\x1b[31mc\t\r\x7f\u202e") == "a\\nb\\x1b[31mc\\t\\r\\x7f\\u202e"


def test_partial_output_is_renamed_on_success_and_removed_on_failure(tmp_path):
    final = tmp_path / "out.edf"
    with partial_output(final) as tmp:
        assert tmp.name == "out.edf.partial"
        tmp.write_text("complete")
    assert final.read_text() == "complete" and not tmp.exists()
    with pytest.raises(KeyboardInterrupt), partial_output(tmp_path / "b.edf") as tmp:
        tmp.write_text("half")
        raise KeyboardInterrupt
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.edf"]


def test_train_refuses_existing_model_files_and_unbounded_counts(tmp_path, capsys):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "dreamnet_stager.json").write_text("{}")
    argv = ["train", "--nights", "0", "--val-nights", "0", "--out", str(tmp_path / "m")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "dreamnet_stager.json: already exists" in err
    for bad, needle in [
        (["--nights", "1000000"], "--nights: must be 0-500"),
        (["--hidden", "100000000"], "--hidden: must be 1-1024"),
        (["--epochs", "0"], "--epochs: must be 1-1000"),
        (["--duration", "1000h"], "at most 48h"),
    ]:
        assert main(["train", *bad]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and needle in err, err
