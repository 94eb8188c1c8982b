"""Former name of :mod:`dsp.validate`, kept for two staging modules until they switch.

``staging/arousal.py`` and ``staging/nightmare.py`` still import from here; they move to
:mod:`dsp.validate` in the issue 13 follow-up (after the ``staging`` re-layout), and this
module is removed then.
"""

from .validate import check_channels, check_positive

__all__ = ["check_channels", "check_positive"]
