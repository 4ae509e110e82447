"""Unit tests of operators/spend/: pricing, credits, burn."""
