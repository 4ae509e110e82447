"""burnwatch's dataflows and entry points."""
