"""Networks of the robotics plugin: backbones its tasks and methods build on."""
