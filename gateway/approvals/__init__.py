"""Supervisors' approvals of one exact request, used once.

The approvals table; the operations and the stock adjustments grant and use them.
"""
