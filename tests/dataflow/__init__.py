"""Dataflow tests: the usage flow on bytewax.testing sources and sinks.

Checked against the DuckDB oracle (tests/oracle.py)."""
