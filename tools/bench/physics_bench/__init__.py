"""Sections of the physics benchmark page."""
