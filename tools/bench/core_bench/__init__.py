"""Sections and helpers of the flow-core benchmark (tools/bench/core.py)."""
