"""Real servers and devices that play the other side of our protocols.

Imported only by the tests and by ``branchd demo``.
"""
