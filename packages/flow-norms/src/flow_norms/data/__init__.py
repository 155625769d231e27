"""Data of the ``norms.lm`` task: real English text (pydoc_data) and synthetic sequence tasks."""
