"""``dreamnet bench``: discovery, selection, quick mode and failures (with stand-in scripts)."""

from __future__ import annotations

import pytest

from staging import cli
from staging.cli import bench


@pytest.fixture
def fake_benchmarks(tmp_path, monkeypatch):
    d = tmp_path / "benchmarks"
    d.mkdir()
    (d / "alpha.py").write_text("import sys\nprint('alpha table', ' '.join(sys.argv[1:]))\n")
    (d / "beta.py").write_text("import sys\nprint('beta ran')\nsys.exit(3)\n")
    (d / "_helper.py").write_text("raise SystemExit('not a benchmark')\n")
    monkeypatch.setattr(bench, "_bench_dir", lambda: d)
    return d


def test_real_suite_has_the_dsp_benchmark():
    assert "dsp" in bench._scripts(bench._bench_dir())


def test_list_and_quick_default(fake_benchmarks, capfd):
    assert cli.main(["bench", "--list"]) == 0
    assert capfd.readouterr().out.split() == ["alpha", "beta"]
    assert cli.main(["bench", "alpha"]) == 0
    out = capfd.readouterr().out
    assert "alpha table --quick" in out and "beta" not in out
    assert cli.main(["bench", "alpha.py", "--full"]) == 0
    out = capfd.readouterr().out
    assert "alpha table" in out and "--quick" not in out


def test_failures_and_unknown_names(fake_benchmarks, capfd):
    assert cli.main(["bench"]) == 1
    captured = capfd.readouterr()
    assert "alpha table --quick" in captured.out and "beta ran" in captured.out
    assert "benchmarks failed: beta" in captured.err
    assert cli.main(["bench", "gamma"]) == 2
    assert "unknown benchmark 'gamma'" in capfd.readouterr().err


def test_missing_directory(tmp_path, monkeypatch, capfd):
    monkeypatch.setattr(bench, "_bench_dir", lambda: tmp_path / "nowhere")
    assert cli.main(["bench"]) == 2
    assert "no benchmark scripts" in capfd.readouterr().err
