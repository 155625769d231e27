"""flow-physics: pulsar-timing-array (PTA) inference for flow.

The library part of issue 14: spectral models of a gravitational-wave background
(:mod:`flow_physics.pta.spectra`), the Hellings-Downs correlation (:mod:`flow_physics.pta.hd`),
the Fourier-basis Gaussian likelihood with the timing model marginalised
(:mod:`flow_physics.pta.likelihood`), evidence estimators (:mod:`flow_physics.pta.evidence`),
a seeded synthetic array (:mod:`flow_physics.data.synthetic`) and the ceffyl free-spectrum
format (:mod:`flow_physics.data.ceffyl`). The hook implementations are in
:mod:`flow_physics.plugin`; no task is registered yet.
"""

__all__: list[str] = []
__version__ = "0.1.0"
