"""The shared runtime every feature stands on.

Supervisor, logs, metrics, the problem registry, the database (engine, base,
migrations runner), the HTTP kit, key signing and the branch's devices. It
imports no feature.
"""
