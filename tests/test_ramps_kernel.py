"""The ramp jump kernel (:func:`hstcal_core.algorithms.ramps.detect_jumps`) on its own."""

from __future__ import annotations

import numpy as np

from hstcal_core.algorithms.ramps import detect_jumps


def test_neighbour_at_the_threshold_is_flagged_half_the_time():
    """A neighbour is tested against a rate that leaves its own increment out.

    NICMOS STEP64 (16 reads): each 64-s increment carries ~15 % of a pixel's rate
    information.  Next to a primary hit, a pixel holding exactly ``neighbor_sigma`` times
    the noise of its test (the increment's, and that of the median rate of the *other*
    increments) must be flagged half the time; with its own increment in the median it
    was flagged 44 % of the time.  Its clean neighbours stay at the 3-σ tail (0.13 %).
    """
    # SAMPTIMEs of NICMOS STEP64, NSAMP 16 (NICMOS IHB ch. 8; hstcal_nicmos.simulate)
    dt = np.diff([0, 0.303, 0.606, 1, 2, 4, 8, 16, 32, 64, 128, 192, 256, 320, 384, 448])
    read_noise, dark, k = 26.0, 0.3, 12
    rng = np.random.default_rng(5)
    shape = (dt.size, 300, 300)
    increments = (rng.normal(0.0, read_noise, shape)
                  + rng.poisson(dark * dt[:, None, None] * np.ones(shape)))
    var_increment = read_noise**2 + dark * dt
    info_others = np.sum(np.delete(dt**2 / var_increment, k))
    sigma_test = np.sqrt(var_increment[k] + dt[k] ** 2 * 0.5 * np.pi / info_others)
    y, x = np.mgrid[1:300:3, 1:300:3]  # 10 000 separate 3x3 stamps
    increments[k, y, x] += 3000.0
    increments[k, y, x + 1] += 3.0 * sigma_test
    jumps = detect_jumps(increments.astype(np.float32), dt, read_noise)
    assert jumps.primary[k, y, x].all()
    assert abs(jumps.mask[k, y, x + 1].mean() - 0.5) < 0.025  # binomial sd 0.005
    assert jumps.mask[k, y + 1, x].mean() < 0.003
    assert not jumps.mask[k + 1, y, x + 1].any()
