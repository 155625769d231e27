"""Built-in tasks of flow-core."""
