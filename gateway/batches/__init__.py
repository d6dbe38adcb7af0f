"""Employer batches (批量制卡): import, submission, production by priority, pickup, enabling.

- :mod:`gateway.batches.service`: :class:`~gateway.batches.service.BatchService`, the
  batch's whole life against the database (see its docstring and docs/batch.md);
- :mod:`gateway.batches.errors`: why the service refuses
  (:class:`~gateway.batches.errors.BatchReason`); the batch API's section answers each
  reason with its problem (:data:`gateway.batches.routes.PROBLEMS`);
- :mod:`gateway.batches.production`: the small port production is reached through,
  and its adapter over :class:`production.controller.ProductionController`;
- :mod:`gateway.batches.schemas`: the API's bodies;
- :mod:`gateway.batches.client`: ``branchd batch import|submit|progress|pickup``
  against a running daemon's API, with a progress bar.
"""
