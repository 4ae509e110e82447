"""Unit tests: pure logic, one folder per room of operators/ (and flows/, infra/)."""
