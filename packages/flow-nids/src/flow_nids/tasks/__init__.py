"""The tasks of the nids plugin, one module each."""
