"""``python -m pyros``: the same as the ``pyros`` command."""

import sys

from pyros.cli import main

sys.exit(main())
