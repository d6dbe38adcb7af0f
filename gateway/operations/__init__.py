"""The operation catalogue, its rules and the business service.

Materials, roles, channels, fees and time limits per operation; the service that
carries out one operation in one transaction, and why it refuses one (``errors.py``);
receipts, working days, the applications queries and their routes, whose table
answers each refusal with its problem.
"""
