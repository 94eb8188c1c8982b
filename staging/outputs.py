"""Output safety shared by every command and library step that writes files or names them.

Outputs (DESIGN: the CLI contract): every command that writes files calls
:func:`check_outputs` before it opens anything for writing, so an existing file is never
replaced without ``--force`` and an output can never be one of the inputs (the same file,
also through a symbolic or hard link); :func:`partial_output` gives a file its name only once
it is complete. File names shown to the user go through :func:`printable`, so a name cannot
write control characters to the terminal.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from .errors import StagingError

#: Suffix of a file being written; renamed to its final name once complete.
PARTIAL_SUFFIX = ".partial"
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def printable(text) -> str:
    r"""Return ``text`` with every non-printable character escaped (``\n``, ``\x1b``...).

    File names and messages pass through it before they reach the terminal, so a name holding
    a newline, an ANSI escape sequence or a bidirectional override is shown, not obeyed.
    Printable text (accents, µ) is unchanged.

    Parameters
    ----------
    text : object
        A string or path (``str()`` is applied).

    Returns
    -------
    str
        The escaped text, on one line.
    """
    out = []
    for ch in str(text):
        if ch.isprintable():
            out.append(ch)
        elif ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        else:
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
    return "".join(out)


def _same_file(a: Path, b: Path) -> bool:
    """Return True if ``a`` and ``b`` name one file (same resolved path, or same inode)."""
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist: not the same file
        return False


def check_outputs(
    outputs: Iterable[tuple[str, str | os.PathLike]],
    inputs: Iterable[tuple[str, str | os.PathLike]] = (),
    *,
    force: bool = False,
) -> None:
    """Refuse outputs that exist (unless ``force``), that are an input or another output.

    Call it before anything is opened for writing.

    Parameters
    ----------
    outputs : iterable of (label, path)
        Every file the command would write, with the argument that names it (``"--out"``).
    inputs : iterable of (label, path)
        Every file the command reads, with its argument (``"--source"``, ``"FILE"``).
    force : bool
        Allow replacing existing outputs (``--force``); an output that is an input is refused
        even then.

    Raises
    ------
    StagingError
        One line naming the argument, the file and the problem (exit code 2 at the CLI).
    """
    ins = [(label, Path(p)) for label, p in inputs if p is not None and str(p) != "-"]
    seen: list[tuple[str, Path]] = []
    for label, p in outputs:
        if p is None or str(p) == "-":
            continue
        path = Path(p)
        for in_label, src in ins:
            if _same_file(path, src):
                raise StagingError(
                    f"{label} {printable(p)}: is the input {in_label} {printable(src)}; "
                    "an output must not overwrite an input"
                )
        for out_label, other in seen:
            if _same_file(path, other):
                raise StagingError(f"{label} {printable(p)}: is also the output {out_label}")
        seen.append((label, path))
        if not force and (path.exists() or path.is_symlink()):
            raise StagingError(f"{label} {printable(p)}: already exists (--force replaces it)")


@contextlib.contextmanager
def partial_output(path: str | os.PathLike) -> Iterator[Path]:
    """Write a file under ``NAME.partial`` and give it its name only once complete.

    Parameters
    ----------
    path : str or path-like
        The final name.

    Yields
    ------
    Path
        Where to write (``NAME.partial``). On success it is renamed to ``path``; when the
        block raises (an error, Ctrl-C) it is removed, so a failed run leaves no file that
        looks complete. A run killed outright leaves ``NAME.partial``, marked by its name.
    """
    final = Path(path)
    tmp = final.with_name(final.name + PARTIAL_SUFFIX)
    with contextlib.ExitStack() as on_error:
        on_error.callback(tmp.unlink, missing_ok=True)
        yield tmp
        on_error.pop_all()
    os.replace(tmp, final)
