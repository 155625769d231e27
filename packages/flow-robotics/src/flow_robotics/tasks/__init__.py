"""The tasks of the robotics plugin, one module each."""
