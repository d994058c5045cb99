"""`python -m bench.eval --help`."""

from __future__ import annotations

import sys

from bench.eval.runner import main

sys.exit(main())
