"""Sections of the sceneflow benchmark (``tools/bench/sceneflow.py``)."""
