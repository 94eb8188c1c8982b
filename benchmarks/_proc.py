"""Process measurements shared by the benchmarks.

Memory, CPU, liveness and children from /proc (also used by the tests that check no process
outlives its parent), and the CPU of a terminal program driven in a pseudo-terminal (the
live views of ``monitor.py`` and ``ward.py``).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path


def status_kib(pid: int | str, field: str) -> int | None:
    """Return a ``VmRSS``/``VmHWM`` line of /proc/PID/status in KiB (None if unavailable)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a live process (from /proc/PID/stat; 0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            parts = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def alive(pid: int) -> bool:
    """Return True while ``pid`` runs (a zombie waiting to be reaped has ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def children(pid: int) -> list[int]:
    """Direct children of a process, over all its threads."""
    out = []
    for f in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            out += [int(x) for x in f.read_text().split()]
        except OSError:
            pass
    return out


def tty_cpu(args: list[str], cwd: Path, dimensions: tuple[int, int], warmup_s: float,
            seconds: float) -> dict | None:  # fmt: skip
    """CPU share of ``python ARGS`` (and its children) drawing in a pseudo-terminal.

    The program runs ``warmup_s`` seconds (imports, first frames), then its CPU is measured over
    ``seconds`` of wall time while its screen is read; ``q`` ends it.

    Returns
    -------
    dict or None
        ``cpu_share`` (CPU seconds per wall second), ``wall`` (s), ``procs`` (processes
        measured) and ``text`` (the last screens read); None without pexpect.
    """
    try:
        import pexpect
    except ImportError:
        print("(pexpect not installed: live-view CPU skipped)\n")
        return None
    child = pexpect.spawn(sys.executable, args, cwd=str(cwd), dimensions=dimensions,
                          encoding="utf-8", codec_errors="replace", timeout=60)  # fmt: skip
    seen: list[str] = []

    def drain(t):
        end = time.monotonic() + t
        while time.monotonic() < end:
            try:
                seen.append(child.read_nonblocking(1 << 20, timeout=0.2)[-20000:])
            except pexpect.TIMEOUT:
                pass
            del seen[:-4]

    try:
        drain(warmup_s)
        pids = [child.pid, *children(child.pid)]
        c0 = sum(cpu_s(p) for p in pids)
        t0 = time.monotonic()
        drain(seconds)
        c1 = sum(cpu_s(p) for p in pids)
        wall = time.monotonic() - t0
    finally:
        child.send("q")
        try:
            child.expect(pexpect.EOF, timeout=60)
        except pexpect.ExceptionPexpect:
            child.terminate(force=True)
    return {"cpu_share": (c1 - c0) / wall, "wall": wall, "procs": len(pids), "text": "".join(seen)}
