"""The image tasks: ``images.digits`` and ``images.patches``."""
