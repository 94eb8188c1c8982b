"""The live view's trace panel: filtered signals drawn in braille at a fixed scale.

Each character cell of a terminal holds a 2 x 4 grid of braille dots, so a panel ``W``
characters wide and ``H`` rows high draws ``2 W`` dot columns and ``4 H`` dot rows. A page of
``page_s`` seconds is cut into ``2 W`` equal spans of samples; each dot column shows the range
(minimum to maximum) of its span, extended to the last sample of the span before it, so the line
stays connected and no peak between two columns is lost whatever the zoom. Everything is
vectorised numpy (a reduction per dot column, a broadcast comparison for the dots): the cost
depends on the panel's size, not on the number of samples, and no Python loop runs per sample.

**Scale.** One *division* is one text row (4 dots). The scale is fixed, in microvolts per
division, per channel type, and shown in the panel's title: by default

| type | µV per division | a channel of 2 rows spans |
|---|---|---|
| EEG | 50 | +-50 µV |
| EOG | 100 | +-100 µV |
| EMG | 20 | +-20 µV |
| ECG | 500 | +-500 µV |

``+`` and ``-`` move every type together along the 1-2-5 ladder :data:`SCALES_UV` (``+`` makes
the traces larger: fewer µV per division). Samples beyond a channel's band are drawn on its edge.
The newest sample is at the right edge; older ones scroll to the left.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rich.text import Text

#: The scale ladder, µV per division (one text row).
SCALES_UV: tuple[float, ...] = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)
#: Default scale per channel type, µV per division.
DEFAULT_SCALE_UV: dict[str, float] = {"eeg": 50.0, "eog": 100.0, "emg": 20.0, "ecg": 500.0}
#: Page lengths the technician can choose, seconds (``<`` and ``>``).
PAGES_S: tuple[float, ...] = (10.0, 15.0, 20.0, 30.0)
#: Channel sets the technician cycles through (``c``): channel types shown, in order.
CHANNEL_SETS: tuple[tuple[str, ...], ...] = (
    ("eeg", "eog", "emg"),
    ("eeg",),
    ("eog", "emg"),
    ("eeg", "eog", "emg", "ecg"),
)
TYPE_STYLE = {"eeg": "cyan", "eog": "green", "emg": "magenta", "ecg": "red"}
#: Width of the channel-name column, characters.
LABEL_W = 11

# bit of each braille dot: [dot row 0..3][dot column 0..1] (Unicode braille patterns, U+2800)
_DOT_BITS = np.array([[0x01, 0x08], [0x02, 0x10], [0x04, 0x20], [0x40, 0x80]], dtype=np.uint32)
_BRAILLE = 0x2800


def column_envelope(x: np.ndarray, n_cols: int) -> tuple[np.ndarray, np.ndarray]:
    """Return the range of ``x`` in ``n_cols`` equal spans, each joined to the span before.

    Parameters
    ----------
    x : ndarray, shape (n_samples,)
        Signal (NaN where there is nothing to draw, e.g. before the session started).
    n_cols : int
        Number of columns (>= 1, at most ``n_samples``).

    Returns
    -------
    lo, hi : ndarray, shape (n_cols,)
        Smallest and largest value of each column's samples and of the last sample of the
        column before it (NaN for a column without a finite sample).
    """
    x = np.asarray(x, dtype=float)
    if x.ndim != 1:
        raise ValueError(f"x must be 1-D (n_samples,), got shape {x.shape}")
    if not 1 <= n_cols <= x.size:
        raise ValueError(f"n_cols must be between 1 and {x.size} (the samples), got {n_cols}")
    start = (np.arange(n_cols) * x.size) // n_cols
    with np.errstate(invalid="ignore"):
        lo = np.fmin.reduceat(x, start)
        hi = np.fmax.reduceat(x, start)
        prev = np.empty(n_cols)
        prev[0] = np.nan
        prev[1:] = x[start[1:] - 1]
        return np.fmin(lo, prev), np.fmax(hi, prev)


def braille_rows(x: np.ndarray, width: int, rows: int, uv_per_div: float) -> list[str]:
    """Draw a signal as ``rows`` lines of ``width`` braille characters at a fixed scale.

    Parameters
    ----------
    x : ndarray, shape (n_samples,)
        The page's samples in µV, oldest first (NaN: nothing to draw); ``n_samples >= 2 *
        width``.
    width : int
        Characters per line (2 dot columns each).
    rows : int
        Lines (4 dot rows each); one line is one division.
    uv_per_div : float
        µV per line. 0 µV is the middle of the band; values beyond it stick to its edge.

    Returns
    -------
    list of str
        ``rows`` strings of ``width`` characters (a space where no dot is set).
    """
    if width < 1 or rows < 1:
        raise ValueError(f"width and rows must be >= 1, got {width} x {rows}")
    if not uv_per_div > 0:
        raise ValueError(f"uv_per_div must be > 0 µV, got {uv_per_div}")
    lo, hi = column_envelope(x, 2 * width)
    n_dots = 4 * rows
    uv_per_dot = uv_per_div / 4.0
    drawn = np.isfinite(lo) & np.isfinite(hi)
    lo, hi = np.where(drawn, lo, 0.0), np.where(drawn, hi, 0.0)
    # dot row 0 is the top; the band's middle (0 µV) lies between rows n_dots/2 - 1 and n_dots/2
    top = np.clip(np.floor(n_dots / 2 - hi / uv_per_dot), 0, n_dots - 1)
    bottom = np.clip(np.floor(n_dots / 2 - lo / uv_per_dot), 0, n_dots - 1)
    r = np.arange(n_dots)[:, None]
    dots = (r >= top) & (r <= bottom) & drawn  # (n_dots, 2 * width)
    cells = dots.reshape(rows, 4, width, 2) * _DOT_BITS[None, :, None, :]
    codes = cells.sum(axis=(1, 3), dtype=np.uint32)
    codes = np.where(codes > 0, codes + _BRAILLE, ord(" ")).astype("<u4")
    return [str(s) for s in np.ascontiguousarray(codes).view(f"<U{width}")[:, 0]]


@dataclass
class TraceSettings:
    """What the trace panel shows; the technician changes it with keys.

    Attributes
    ----------
    zoom : int
        Steps along :data:`SCALES_UV` from each type's default (positive: larger traces).
    page : int
        Index into :data:`PAGES_S`.
    channel_set : int
        Index into :data:`CHANNEL_SETS`.
    """

    zoom: int = 0
    page: int = len(PAGES_S) - 1
    channel_set: int = 0

    @property
    def page_s(self) -> float:
        """Seconds shown."""
        return PAGES_S[self.page]

    @property
    def types(self) -> tuple[str, ...]:
        """Channel types shown."""
        return CHANNEL_SETS[self.channel_set]

    def scale_uv(self, ch_type: str) -> float:
        """µV per division of a channel type at the current zoom."""
        i = SCALES_UV.index(DEFAULT_SCALE_UV.get(ch_type, 100.0)) - self.zoom
        return float(SCALES_UV[min(max(i, 0), len(SCALES_UV) - 1)])

    def change_zoom(self, step: int) -> bool:
        """Move the zoom one step (+1 larger, -1 smaller); False at the end of the ladder."""
        new = self.zoom + step
        idx = [SCALES_UV.index(v) - new for v in DEFAULT_SCALE_UV.values()]
        if not all(0 <= i < len(SCALES_UV) for i in idx):
            return False
        self.zoom = new
        return True

    def change_page(self, step: int) -> bool:
        """Shorter (-1) or longer (+1) page; False at the end of :data:`PAGES_S`."""
        new = self.page + step
        if not 0 <= new < len(PAGES_S):
            return False
        self.page = new
        return True

    def next_channels(self) -> None:
        """Show the next channel set of :data:`CHANNEL_SETS`."""
        self.channel_set = (self.channel_set + 1) % len(CHANNEL_SETS)

    def title(self, present_types) -> str:
        """Return the panel's title: page, scale of every type shown, and the filtering."""
        shown = [t for t in self.types if t in set(present_types)]
        scales = ", ".join(f"{t.upper()} {self.scale_uv(t):g}" for t in shown) or "none"
        return f"traces: last {self.page_s:g} s, filtered; {scales} µV/div; 1 div = 1 row"


class TracePanel:
    """Renderable: the chosen channels' last page, one band of ``rows`` lines per channel.

    Parameters
    ----------
    data : ndarray, shape (n_channels, n_samples)
        Filtered µV, oldest first (the session's trace ring); may hold less than a page.
    ch_names, ch_types : sequence of str
        Of the rows of ``data``.
    sfreq : float
        Hz.
    settings : TraceSettings
        Page, scale and channel set.
    rows : int
        Lines per channel.
    off : collection of int
        Channels whose electrode is reported off (their label is shown in red, ``OFF``).
    """

    def __init__(self, data, ch_names, ch_types, sfreq, settings, rows=2, off=()):
        self.data = data
        self.ch_names = tuple(ch_names)
        self.ch_types = tuple(ch_types)
        self.sfreq = float(sfreq)
        self.settings = settings
        self.rows = max(1, int(rows))
        self.off = set(off)

    def channels(self) -> list[int]:
        """Return the indices of the channels shown, grouped by type in the set's order."""
        order = self.settings.types
        return [i for t in order for i, ct in enumerate(self.ch_types) if ct == t]

    def _page(self, i: int, page_n: int) -> np.ndarray:
        x = self.data[i, -page_n:] if self.data.shape[1] else self.data[i]
        if x.size < page_n:  # the start of the session: the page fills from the right
            x = np.concatenate([np.full(page_n - x.size, np.nan), x])
        return x

    def _axis(self, width: int) -> Text:
        """Time axis under the traces: seconds before now, every 5 s (10 s on long pages)."""
        page = self.settings.page_s
        step = 5.0 if page <= 20 else 10.0
        line = [" "] * width
        for k in range(int(page // step) + 1):
            s = k * step
            col = int(round((1.0 - s / page) * (width - 1)))
            label = "now" if s == 0 else f"-{s:g} s"
            at = max(0, min(col - len(label) + 1 if s == 0 else col - len(label) // 2, width))
            if at + len(label) <= width and all(c == " " for c in line[max(0, at - 1) : at]):
                line[at : at + len(label)] = label
        return Text(" " * LABEL_W + "".join(line), style="dim", no_wrap=True)

    def __rich_console__(self, console, options):  # noqa: D105
        width = max(4, options.max_width - LABEL_W)
        page_n = max(2 * width, round(self.settings.page_s * self.sfreq))
        shown = self.channels()
        if not shown:
            yield Text("no channel of these types: c shows the next set", style="dim")
            return
        for i in shown:
            t = self.ch_types[i]
            scale = self.settings.scale_uv(t)
            lines = braille_rows(self._page(i, page_n), width, self.rows, scale)
            off = i in self.off
            labels = [self.ch_names[i][: LABEL_W - 1], "OFF" if off else ""]
            if self.rows == 1 and off:
                labels = [f"{labels[0][: LABEL_W - 5]} OFF"]
            for k, s in enumerate(lines):
                text = labels[k] if k < len(labels) else ""
                line = Text(f"{text:<{LABEL_W}}", style="bold red" if off else "bold")
                line.append(s, style="bold red" if off else TYPE_STYLE.get(t, "white"))
                line.no_wrap = True
                yield line
        yield self._axis(width)
