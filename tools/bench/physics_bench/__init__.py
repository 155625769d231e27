"""Sections of the flow-physics benchmark pages (PTA and turbulence)."""
