"""Alerting: anomaly models and scores, alert policy, dedup keys, webhook payloads.

Pure logic (payloads are bytes and headers, not requests); may import operators.records,
never Bytewax, a connector or a network client.
"""
