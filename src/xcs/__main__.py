"""``python -m xcs``: the ``xcs`` command line (``demo``, ``trace show``, ``doctor``, ``bench``)."""

from __future__ import annotations

import sys

from xcs._cli import main

if __name__ == "__main__":
    sys.exit(main())
