"""Train a Complexity model on local text: `python scripts/train_complexity.py --data DIR --output-dir OUT`.

The same as the `complexity-train` console script; see docs/training.md and `--help`.
"""

import sys

from complexity.training.cli import train_main

if __name__ == "__main__":
    sys.exit(train_main())
