"""Employer batches (批量制卡): import, submission, production by priority, pickup, enabling.

- :mod:`gateway.batch.service`: :class:`~gateway.batch.service.BatchService`, the
  batch's whole life against the database (see its docstring and docs/batch.md);
- :mod:`gateway.batch.production`: the small port production is reached through,
  and its adapter over :class:`production.controller.ProductionController`;
- :mod:`gateway.batch.schemas`: the API's bodies;
- :mod:`gateway.batch.client`: ``branchd batch import|submit|progress|pickup``
  against a running daemon's API, with a progress bar.
"""
