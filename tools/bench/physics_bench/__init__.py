"""Sections of the flow-physics benchmark."""
