"""Networks of the physics plugin: the neural-spline flow used as a PTA posterior."""

__all__: list[str] = []
