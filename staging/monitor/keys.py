"""Non-blocking keyboard input for the live view, and the technician's key map.

Keys: ``a`` acknowledge the alert, ``v`` veto / ``y`` approve the pending intervention, ``n`` add a
note (type the text, Enter to save, Esc to cancel), ``l`` mark lights off (then on), ``p``
pause/resume, ``+``/``-`` larger/smaller traces (µV per division), ``<``/``>`` shorter/longer
page, ``c`` next channel set, ``t`` show/hide the simulator's truth, ``q`` quit. Ctrl-C is left to
the terminal (it raises ``KeyboardInterrupt``) so the session can finalise its files.
"""

from __future__ import annotations

import os
import select
import sys
import time
from dataclasses import dataclass
from typing import IO

#: key -> action name, outside note entry.
KEYMAP: dict[str, str] = {
    "a": "ack",
    "v": "veto",
    "y": "approve",
    "n": "note",
    "l": "lights",
    "p": "pause",
    "+": "zoom_in",
    "=": "zoom_in",  # + without shift
    "-": "zoom_out",
    ">": "page_longer",
    ".": "page_longer",  # > without shift
    "<": "page_shorter",
    ",": "page_shorter",  # < without shift
    "c": "channels",
    "t": "truth",
    "q": "quit",
}

#: One-line help shown at the bottom of the live view.
KEY_HELP = (
    "a ack  v veto  y approve  n note  l lights  p pause  +/- scale  </> page  c channels  "
    "t truth  q quit"
)

_MAX_NOTE = 200


@dataclass(frozen=True)
class Action:
    """A technician's action decoded from keys.

    Parameters
    ----------
    name : str
        A value of :data:`KEYMAP` (``ack``, ``veto``, ``approve``, ``note``, ``lights``,
        ``pause``, ``zoom_in``, ``zoom_out``, ``page_longer``, ``page_shorter``,
        ``channels``, ``truth``, ``quit``).
    text : str
        The note text for ``note``; empty otherwise.
    """

    name: str
    text: str = ""


class KeyInterpreter:
    """Turn key presses into :class:`Action` objects (a small state machine for notes).

    Attributes
    ----------
    note_buffer : str or None
        The note being typed, or None outside note entry (the view shows it as a prompt).
    """

    def __init__(self):
        self.note_buffer: str | None = None

    def feed(self, keys: str) -> list[Action]:
        """Decode a string of key presses.

        Parameters
        ----------
        keys : str
            Characters as read from the terminal; escape sequences (arrow keys, ...) arrive whole
            in one read and are ignored.

        Returns
        -------
        list of Action
            The completed actions, in order.
        """
        out: list[Action] = []
        i = 0
        while i < len(keys):
            ch = keys[i]
            i += 1
            if ch == "\x1b":
                if i < len(keys) and keys[i] in "[O":  # CSI/SS3 sequence: skip to its final byte
                    i += 1
                    while i < len(keys) and not ("@" <= keys[i] <= "~"):
                        i += 1
                    i += 1
                    continue
                if self.note_buffer is not None:
                    self.note_buffer = None  # Esc cancels the note
                continue
            if self.note_buffer is not None:
                if ch in "\r\n":
                    text = self.note_buffer.strip()
                    self.note_buffer = None
                    if text:
                        out.append(Action("note", text))
                elif ch in "\x7f\b":
                    self.note_buffer = self.note_buffer[:-1]
                elif ch.isprintable() and len(self.note_buffer) < _MAX_NOTE:
                    self.note_buffer += ch
                continue
            name = KEYMAP.get(ch.lower())
            if name == "note":
                self.note_buffer = ""
            elif name is not None:
                out.append(Action(name))
        return out


class KeyReader:
    """Read keys without blocking, with the terminal in cbreak mode while in use.

    Parameters
    ----------
    stream : file object, optional
        The input (default ``sys.stdin``). When it is not a terminal, no keys are read and
        :meth:`wait` only sleeps.

    Notes
    -----
    Use as a context manager: the terminal's previous mode is restored on exit, also after an
    exception. cbreak keeps ``ISIG``, so Ctrl-C still raises ``KeyboardInterrupt``.
    """

    def __init__(self, stream: IO[str] | None = None):
        self.stream = sys.stdin if stream is None else stream
        try:
            self.fd = self.stream.fileno()
            self.is_tty = os.isatty(self.fd)
        except (AttributeError, OSError, ValueError):
            self.fd, self.is_tty = -1, False
        self._saved = None

    def __enter__(self):
        if self.is_tty:
            import termios
            import tty

            self._saved = termios.tcgetattr(self.fd)
            tty.setcbreak(self.fd)
        return self

    def __exit__(self, *exc):
        self.restore()

    def restore(self) -> None:
        """Put the terminal back in the mode it had before (idempotent)."""
        if self._saved is not None:
            import termios

            termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)
            self._saved = None

    def wait(self, timeout: float) -> str:
        """Wait up to ``timeout`` seconds for keys and return what was typed.

        Parameters
        ----------
        timeout : float
            Seconds; 0 polls.

        Returns
        -------
        str
            The characters read (empty if none arrived in time).
        """
        timeout = max(0.0, float(timeout))
        if not self.is_tty:
            if timeout:
                time.sleep(timeout)
            return ""
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return ""
        try:
            data = os.read(self.fd, 1024)
        except OSError:
            return ""
        if not data:  # end of input (terminal closed): behave as if idle
            self.is_tty = False
            return ""
        return data.decode("utf-8", errors="ignore")
