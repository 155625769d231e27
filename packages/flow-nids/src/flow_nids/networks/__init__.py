"""Networks of the nids plugin: backbones its tasks and methods build on."""
