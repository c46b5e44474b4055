"""`python -m audits run ...` (see `audits.cli`)."""

import sys

from audits.cli import main

if __name__ == "__main__":
    sys.exit(main())
