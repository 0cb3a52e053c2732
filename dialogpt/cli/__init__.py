"""Console commands: one module per command, each ``argparse -> one library call``.

``setup.cfg`` points every console script at ``dialogpt.cli.<command>:main``; ``python -m dialogpt.cli
<command> [args]`` runs the same parser. ``dialogpt-build-dataset`` lives in ``dialogpt_dataset.cli``
because the model side never imports the data side.
"""
