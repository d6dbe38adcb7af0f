"""Supervisors' approvals of one exact request, used once.

- :mod:`gateway.approvals.service`: :class:`~gateway.approvals.service.Approvals`, which
  grants an approval and uses it once in the caller's transaction; the operations and
  the stock adjustments both take their approvals there;
- :mod:`gateway.approvals.errors`: why an approval is refused
  (:class:`~gateway.approvals.errors.ApprovalReason`); the operations' section answers
  each reason with its problem;
- :mod:`gateway.approvals.rows`: the approvals table.
"""
