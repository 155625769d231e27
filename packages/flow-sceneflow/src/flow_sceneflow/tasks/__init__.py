"""The sceneflow tasks: ``sceneflow.icpflow`` and ``sceneflow.scoop``."""
