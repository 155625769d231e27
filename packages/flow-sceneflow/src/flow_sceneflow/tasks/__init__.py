"""The sceneflow tasks: ``sceneflow.icpflow``, ``sceneflow.scoop`` and ``sceneflow.optical``."""
