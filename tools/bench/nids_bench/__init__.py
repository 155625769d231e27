"""Sections of the flow-nids benchmark (tools/bench/nids.py)."""
