"""``python -m embedstack.cli``: the ``embedstack`` command."""

import sys

from embedstack.cli.main import main

sys.exit(main())
