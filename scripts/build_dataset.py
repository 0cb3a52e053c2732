#!/usr/bin/env python
"""Pushshift dumps -> Reddit dialogue dataset (see dialogpt_dataset/cli.py for the options)."""

import sys

from dialogpt_dataset.cli import main

if __name__ == "__main__":
    sys.exit(main())
