"""The HTTP kit of the teller API.

Terminals and roles, idempotent POSTs, the sections features mount their routes
through, request parsing, and the OpenAPI document.
"""
