"""End-to-end tests: the burnwatch command on files, as a user runs it."""
