"""``python -m benchmarks``: run the benchmarks (see ``--help``)."""

import sys

from benchmarks.context import SRC

# The runner measures the checkout it sits in: its own src/ comes first, as it does for the child
# processes it starts, so an installed copy of imagestudio elsewhere is never what gets measured.
sys.path.insert(0, str(SRC))

from benchmarks.cli import main

if __name__ == "__main__":
    sys.exit(main())
