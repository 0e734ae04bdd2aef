"""drizzlepac's AstroDrizzle, configured offline, on simulated dithered associations.

What the drizzle stage will run at its end: all AstroDrizzle steps (sky, separate
drizzle, median, blot, CR identification, final drizzle) on three dithered exposures,
with ``updatewcs=False`` (the exposures carry IDCTAB = N/A and their own WCS) and the
astrometry database switched off (``ASTROMETRY_STEP_CONTROL=off``, read by stwcs
``astrometry_utils``) — and with every socket connection refused, so a step that tried
the network would fail here instead of stalling.  drizzlepac's housekeeping warnings
are handled by :func:`hstcal_core.drizzle._thirdparty.library_warnings` (listed there);
any other warning still fails the test.
"""

from __future__ import annotations

import socket

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS
from photutils.centroids import centroid_2dg

from hstcal_core.drizzle._thirdparty import import_drizzlepac, library_warnings
from hstcal_core.simulate.flt import simulate_flt_asn
from hstcal_core.simulate.starfield import positions_at_epoch
from hstcal_core.testing import registered_detector


@pytest.fixture
def offline(monkeypatch):
    """No astrometry database, no sockets."""
    monkeypatch.setenv("ASTROMETRY_STEP_CONTROL", "off")

    def refuse(self, address):
        raise OSError(f"test is offline: connection to {address!r} refused")

    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.mark.parametrize("name, shape", [("wfc3_uvis", (256, 512)), ("wfc3_ir", (512, 512))])
def test_astrodrizzle_combines_a_simulated_association(tmp_path, monkeypatch, offline, name,
                                                       shape):
    truth = simulate_flt_asn(tmp_path, registered_detector(name), shape=shape, n_exposures=3,
                             n_stars=300, seed=21)
    n_chips = len(truth.exposures[0].chips)
    monkeypatch.chdir(tmp_path)  # AstroDrizzle writes into the working directory
    astrodrizzle = import_drizzlepac("astrodrizzle")
    with library_warnings():
        astrodrizzle.AstroDrizzle(truth.asn_path.name, output=truth.asn_id, updatewcs=False,
                                  num_cores=1, in_memory=True, build=True, preserve=False,
                                  clean=True, runfile="")

    drz = tmp_path / f"{truth.asn_id}_drz.fits"
    assert drz.exists()
    with fits.open(drz) as hdul:
        names = [h.name for h in hdul]
        primary = hdul[0].header
        sci, wht, ctx = (hdul[ext].data for ext in ("SCI", "WHT", "CTX"))
        drz_wcs = WCS(hdul["SCI"].header)
    assert names[:4] == ["PRIMARY", "SCI", "WHT", "CTX"]
    assert primary["NDRIZIM"] == 3 * n_chips
    assert primary["D001KERN"] == "square"
    covered = wht > 0
    assert covered.mean() > 0.8
    assert np.all(ctx[covered] != 0)
    assert np.all(np.isfinite(sci[covered]))

    # Bright, isolated stars sit where the drizzled WCS puts the truth catalog.
    exptime = truth.exposures[0].exptime
    ra, dec = positions_at_epoch(truth.catalog, truth.exposures[0].epoch)
    x, y = drz_wcs.all_world2pix(ra, dec, 0)
    flux = np.asarray(truth.catalog["flux"])
    ny, nx = sci.shape
    offsets = []
    for k in np.flatnonzero(flux * exptime > 2e4):
        xi, yi = int(np.rint(x[k])), int(np.rint(y[k]))
        if (not 6 <= xi < nx - 6 or not 6 <= yi < ny - 6
                or np.sum(np.hypot(x - x[k], y - y[k]) < 8) > 1
                or not np.all(wht[yi - 4:yi + 5, xi - 4:xi + 5] > 0)):
            continue
        cx, cy = centroid_2dg(sci[yi - 4:yi + 5, xi - 4:xi + 5])
        offsets.append(np.hypot(cx + xi - 4 - x[k], cy + yi - 4 - y[k]))
    assert len(offsets) >= 3
    assert np.median(offsets) < 0.05
