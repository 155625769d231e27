"""The image tasks: one module per task (``images.digits``, ``images.restore``, ...)."""
