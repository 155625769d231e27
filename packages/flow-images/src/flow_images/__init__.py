"""flow-images: image generation with flows.

Datasets that ship (scikit-learn's digits, patches of scikit-image's photographs, or a user's
folder of images), a small U-Net and a small DiT, feature-space metrics from a shipped feature
network, FlowTurbo, and the tasks ``images.digits`` and ``images.patches`` on which every
objective and sampler of flow-core runs. The hook implementations are in
:mod:`flow_images.plugin`; components are imported only when first used.
"""

__version__ = "0.1.0"
