"""``python -m benchmark``: the `membench` command line."""

import sys

from .cli import main

sys.exit(main())
