"""``python -m staging.cli``: the ``dreamnet`` command line."""

import sys

from . import main

sys.exit(main())
