"""flow-norms: PowerNorm, the LayerNorm family and AdamP/SGDP as ``norm`` and ``optimizer``
components for any flow plugin, plus the ``norms.lm`` comparison task.

Hook implementations are in :mod:`flow_norms.plugin`; importing this package is cheap.
"""
