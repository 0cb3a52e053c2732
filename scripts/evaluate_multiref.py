#!/usr/bin/env python
"""Score responses with DSTC7's multi-reference metrics (NIST, BLEU, METEOR, Entropy, Distinct),
exact to the official tools, and/or a model's perplexity. Same code as ``dialogpt-eval``:

    python scripts/evaluate_multiref.py --hyp test.hyp.txt --refs data/test.refs.txt --output-json scores.json

See ``python scripts/evaluate_multiref.py --help`` and :mod:`dialogpt.cli.eval`.
"""

import sys

from dialogpt.cli.eval import main

if __name__ == "__main__":
    sys.exit(main())
