"""Pulsar-timing-array method: spectra, Hellings-Downs correlation, likelihood and evidence."""

__all__: list[str] = []
