"""Unit tests of flows/: settings, the recovery store, the output check, local clusters."""
