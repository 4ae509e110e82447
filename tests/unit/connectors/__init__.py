"""Unit tests of the pure parts of operators/connectors/.

The I/O itself is tested in tests/integration/."""
