"""Unit tests of operators/usage/: parse, dedupe, admission, windows, run files."""
