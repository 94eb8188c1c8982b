"""``dreamnet bench``: run the benchmark scripts beside the package and print their tables.

Every ``benchmarks/<name>.py`` of the source checkout is a standalone script that prints
markdown tables and accepts ``--quick``. ``dreamnet bench`` runs them all in quick mode, one
after the other in subprocesses (so one script's imports and compilations do not skew
another's numbers); ``dreamnet bench dsp`` runs one; ``--full`` runs the full versions.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from headset.lifeline import child_popen_kwargs

from ..errors import StagingError


def _bench_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "benchmarks"


def _scripts(directory: Path) -> dict[str, Path]:
    if not directory.is_dir():
        return {}
    return {p.stem: p for p in sorted(directory.glob("*.py")) if not p.name.startswith("_")}


def add_parser(subparsers) -> None:
    """Register ``dreamnet bench``."""
    names = ", ".join(_scripts(_bench_dir())) or "none found"
    parser = subparsers.add_parser(
        "bench",
        help="run the benchmark suite (quick mode) and print its tables",
        description=(
            "Run the benchmark scripts found in benchmarks/ beside the package (quick mode "
            "unless --full) and print their markdown tables. Available: " + names + "."
        ),
    )
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help="benchmarks to run (default: all), e.g. dsp"
    )
    parser.add_argument("--full", action="store_true", help="run the full versions (minutes each)")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.set_defaults(func=run)


def run(args) -> int:
    """Run the selected benchmark scripts.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed arguments (``names``, ``full``, ``list``).

    Returns
    -------
    int
        0 if every script succeeded, 1 otherwise.
    """
    directory = _bench_dir()
    scripts = _scripts(directory)
    if not scripts:
        raise StagingError(
            f"no benchmark scripts in {directory} (dreamnet bench needs a source checkout)"
        )
    if args.list:
        for name in scripts:
            print(name)
        return 0
    wanted = [n[:-3] if n.endswith(".py") else n for n in args.names] or list(scripts)
    unknown = [n for n in wanted if n not in scripts]
    if unknown:
        raise StagingError(f"unknown benchmark {unknown[0]!r}; available: {', '.join(scripts)}")
    failed = []
    for name in wanted:
        cmd = [sys.executable, str(scripts[name])] + ([] if args.full else ["--quick"])
        print(f"# benchmark: {name} ({'full' if args.full else 'quick'})\n", flush=True)
        t0 = time.perf_counter()
        rc = subprocess.call(cmd, cwd=str(directory.parent), **child_popen_kwargs())
        print(f"\n({name}: {time.perf_counter() - t0:.0f} s, exit code {rc})\n", flush=True)
        if rc != 0:
            failed.append(name)
    if failed:
        print(f"dreamnet: benchmarks failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0
