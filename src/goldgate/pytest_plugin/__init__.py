"""The thin pytest layer over the engine: parametrisation at collection, prefetch before the run
loop, results on reports (so xdist totals match one process), gates applied after the loop, and
the xdist scheduling that hands each worker whole chunks.

May import: everything below the CLI.
"""
