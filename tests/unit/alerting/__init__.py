"""Unit tests of operators/alerting/: anomaly scores and alert policy."""
