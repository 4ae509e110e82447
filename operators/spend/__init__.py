"""Spend: price rollups, the credit ledger, hourly burn and budgets, FOCUS rows (steps.py wraps it).

Pure logic plus its Bytewax wrapper; may import operators.records, usage/ and alerting/,
never a connector or a network client.
"""
