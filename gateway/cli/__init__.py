"""The ``branchd`` command: one module per program (:mod:`gateway.cli.main` dispatches)."""
