"""FlowTurbo (Zhao et al. 2024): a velocity refiner, its objective and the three-phase sampler.

- :mod:`~flow_images.flowturbo.model`: :class:`VelocityRefiner` r_φ and
  :class:`FlowTurboModel` (predictor + refiner);
- :mod:`~flow_images.flowturbo.objective`: :class:`RefinerObjective`, registered as
  ``flowturbo-refiner``;
- :mod:`~flow_images.flowturbo.sampler`: :class:`FlowTurboSampler` (Heun, pseudo-corrector,
  refiner; optionally compiled), registered as ``flowturbo``.
"""
