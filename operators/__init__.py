"""burnwatch's building blocks: pure usage logic plus thin Bytewax wrappers."""
