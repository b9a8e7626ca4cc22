"""``python -m sidecar`` is the same as ``hksv-sidecar``."""

import sys

from .cli import main

sys.exit(main())
