"""Train a byte-level BPE tokenizer on local text: `python scripts/train_tokenizer.py --data DIR --vocab-size N`.

The same as the `complexity-train-tokenizer` console script; see docs/training.md and `--help`.
"""

import sys

from complexity.training.cli import tokenizer_main

if __name__ == "__main__":
    sys.exit(tokenizer_main())
