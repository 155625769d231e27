"""The ``norms.lm`` task: a small transformer language model that compares norms and
optimizers on real English text (pydoc_data) or synthetic sequence tasks."""
