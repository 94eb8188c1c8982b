"""Child processes that never outlive their parent, and that stop cleanly on SIGTERM.

Every process the project starts goes through this module:

* a forked Python child (``multiprocessing``, a ``ProcessPoolExecutor`` worker) calls
  :func:`follow_parent` first thing (as its target's first line, or as the pool's
  ``initializer``);
* a program run with ``subprocess`` is started with :func:`child_popen_kwargs`.

A child follows its parent in two independent ways, so that neither ``kill -9`` of the parent
nor a platform without the first one leaves it running: the parent-death signal of Linux
(``prctl(PR_SET_PDEATHSIG, SIGTERM)``, through ctypes), and a watcher thread that checks
``os.getppid()`` every :data:`PARENT_CHECK_S` seconds (portable; a Python child only). SIGTERM
ends the child cleanly (``SystemExit``: ``finally`` blocks and context managers run); if it has
not ended :data:`EXIT_GRACE_S` seconds later (stuck in compiled code), it is ended at once.

Linux sends the parent-death signal when the *thread* that started the child ends, so start
children from a thread that lives as long as they should (the main thread).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

#: Seconds between two checks of the parent by a child's watcher thread.
PARENT_CHECK_S = 0.5
#: Seconds a child has to end cleanly after SIGTERM before it is ended at once.
EXIT_GRACE_S = 1.0
_PR_SET_PDEATHSIG = 1


def _find_prctl():
    """Return libc's ``prctl`` (Linux), or None where there is none."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


# resolved once, at import: a freshly forked child must not load libraries (no dlopen after fork)
_PRCTL = _find_prctl()


def _set_death_signal() -> None:
    """Ask the kernel to send SIGTERM to this process when its parent ends (Linux only)."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)


def _exit_cleanly(signum, frame) -> None:
    """SIGTERM handler: unwind with ``SystemExit``, and end at once if that takes too long."""
    code = 128 + int(signum)
    timer = threading.Timer(EXIT_GRACE_S, os._exit, (code,))
    timer.daemon = True
    timer.start()
    raise SystemExit(code)


def _watch_parent(parent_pid: int) -> None:
    """Send SIGTERM to this process once ``parent_pid`` is no longer its parent."""
    while os.getppid() == parent_pid:
        time.sleep(PARENT_CHECK_S)
    os.kill(os.getpid(), signal.SIGTERM)


def follow_parent(parent_pid: int, *, own_group: bool = False) -> None:
    """Tie this (child) process to its parent: call it first thing in every forked child.

    After the call the process ends, cleanly, on SIGTERM and when its parent ends, whatever
    the way the parent ended (``kill -9`` included).

    Parameters
    ----------
    parent_pid : int
        Process id of the parent, taken by the parent before it started the child
        (``os.getpid()``): if the parent has already ended, the child ends at once.
    own_group : bool
        Put the child in a process group of its own, so that what is sent to the terminal's
        group (Ctrl-C, a hang-up, ``kill -TERM -PGID``) reaches only the parent, which then
        ends the child in order (the monitor finalises its recording first).

    Raises
    ------
    SystemExit
        If the parent has already ended.
    """
    if own_group:
        os.setpgid(0, 0)
    signal.signal(signal.SIGTERM, _exit_cleanly)
    _set_death_signal()
    if os.getppid() != parent_pid:  # the parent ended before the death signal was set
        raise SystemExit(128 + int(signal.SIGTERM))
    watcher = threading.Thread(
        target=_watch_parent, args=(parent_pid,), name="follow-parent", daemon=True
    )
    watcher.start()


def child_popen_kwargs() -> dict:
    """Return the ``subprocess.run``/``Popen`` arguments that end a program with its parent.

    The parent-death signal (SIGTERM) is set in the child before the program starts, and
    outlives the ``exec``; where the platform has none, the dictionary is empty.

    Returns
    -------
    dict
        Keyword arguments for ``subprocess``.
    """
    return {"preexec_fn": _set_death_signal} if _PRCTL is not None else {}
