"""``python -m fathom.cli``: the ``fathom`` command."""

import sys

from fathom.cli import main

sys.exit(main())
