"""Usage: parse records into events, dedupe them, window and roll them up (steps.py wraps it).

Pure logic plus its Bytewax wrapper; may import operators' shared modules and spend/ (the
window step prices rows), never a connector or a network client.
"""
