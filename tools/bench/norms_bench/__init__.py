"""Sections of the flow-norms benchmark (``tools/bench/norms.py``)."""
