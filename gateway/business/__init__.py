"""Business core: the operation catalogue, its rules, states and deadlines.

Everything here is pure (no I/O): the HTTP layer and the persistence layer
call into it. The catalogue (:mod:`gateway.business.catalogue`) is the one
place that says what each operation needs and allows.
"""
