"""A ``dreamnet`` command spawned in a pseudo-terminal, and the text it drew (pexpect).

Used by the live views' tests (``dreamnet monitor``, ``dreamnet ward``): they drive the
program with keys as a technician would and read what is on screen, escape codes removed.
"""

from __future__ import annotations

import re
import sys
import time

import pexpect
from _constants import REPO

#: Terminal escape sequences (CSI, charset selection, keypad and cursor save modes).
ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][A-Za-z0-9]|\x1b[=>78]")


class Screen:
    """A spawned ``python -m staging.cli COMMAND ARGS...`` and the text of its latest frames.

    Parameters
    ----------
    command : str
        The ``dreamnet`` command (``"monitor"``, ``"ward"``).
    args : sequence of str
        Its arguments.
    tmp_path : path
        HOME of the child (nothing of the user's leaks in).
    rows, cols : int
        Size of the pseudo-terminal.
    header : str
        Text that starts every frame (:meth:`frame` cuts the output there).
    forget_on_match : bool
        Drop what was read once :meth:`wait_for` matched, so the next wait sees only newer
        frames.
    wait_s : float
        Default seconds :meth:`wait_for` waits.
    """

    def __init__(
        self, command, args, tmp_path, rows, cols, header, forget_on_match=False, wait_s=60.0
    ):
        self.child = pexpect.spawn(
            sys.executable,
            ["-m", "staging.cli", command, *args],
            cwd=str(REPO),
            dimensions=(rows, cols),
            encoding="utf-8",
            codec_errors="replace",
            timeout=30,
            env={"TERM": "xterm-256color", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        )
        self.header = header
        self.forget_on_match = forget_on_match
        self.wait_s = float(wait_s)
        self.raw = ""

    def _pump(self, timeout):
        try:
            self.raw += self.child.read_nonblocking(1 << 20, timeout=timeout)
        except pexpect.TIMEOUT:
            pass
        self.raw = self.raw[-400_000:]

    def frame(self) -> str:
        """The text of the last complete frame (everything after the last header)."""
        text = ANSI.sub("", self.raw)
        i = text.rfind(self.header)
        j = text.rfind(self.header, 0, i) if i > 0 else -1
        return text[j:i] if (j >= 0 and i - j > 200) else text[i:]

    def wait_for(self, pattern, timeout=None) -> str:
        """Wait until the recent output matches ``pattern``; return that text."""
        rx = re.compile(pattern)
        end = time.monotonic() + (self.wait_s if timeout is None else timeout)
        while time.monotonic() < end:
            self._pump(0.2)
            text = ANSI.sub("", self.raw[-200_000:])
            if rx.search(text):
                if self.forget_on_match:
                    self.raw = ""
                return text
            if not self.child.isalive():
                self._pump(0.2)
                break
        raise AssertionError(f"{pattern!r} not on screen; last frame:\n{self.frame()[-4000:]}")

    def finish(self, timeout=60):
        """Wait for the process to end; return its exit status."""
        self.child.expect(pexpect.EOF, timeout=timeout)
        self.raw += self.child.before or ""
        self.child.close()
        return self.child.exitstatus

    def close(self):
        """Kill the process if it still runs."""
        if self.child.isalive():
            self.child.terminate(force=True)
