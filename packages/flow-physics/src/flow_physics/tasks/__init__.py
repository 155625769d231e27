"""Tasks of the physics plugin, one module per task."""

__all__: list[str] = []
