"""PTA data: a seeded synthetic array generator and the ceffyl free-spectrum format."""

__all__: list[str] = []
