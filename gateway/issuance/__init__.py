"""Instant card issuance.

The production service over the controller, its journal in the database, the
card-face render pool, the blank-card stock, and their routes.
"""
