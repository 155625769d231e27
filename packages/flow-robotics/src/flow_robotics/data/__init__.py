"""Demonstrations: robomimic HDF5 files, and scripted ones generated from experts."""
