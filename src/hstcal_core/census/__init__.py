"""Cosmic-ray census of HST darks: records, the HDF5 store, reports."""
