"""``python -m lenet_utils COMMAND ...``: see :mod:`lenet_utils.cli`."""

import sys

from .cli import main

sys.exit(main())
