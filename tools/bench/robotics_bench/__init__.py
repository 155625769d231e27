"""Sections of the flow-robotics benchmark (tools/bench/robotics.py)."""
