"""TIME-TAG lightcurves (the hstlc job): event lists, binning, products, ingest."""
