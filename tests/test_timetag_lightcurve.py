"""The lightcurve kernel on hand-built event lists with exact truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from hstcal_core.algorithms.timebin import bin_edges, gti_exposure
from hstcal_core.errors import InputError
from hstcal_core.timetag.events import EventList, Extraction, Region, classify
from hstcal_core.timetag.lightcurve import (
    BIN_NO_GTI,
    BIN_PARTIAL,
    LightcurveSpec,
    make_lightcurve,
)


# --------------------------------------------------------------- numpy reference
# What the compiled event loop must agree with (timetag._timebin_kernel).
def in_gti(time: np.ndarray, gti: np.ndarray) -> np.ndarray:
    """Boolean mask of events inside any good-time interval (start ≤ t ≤ stop)."""
    gti = np.asarray(gti, dtype=np.float64).reshape(-1, 2)
    if len(gti) == 0:
        return np.zeros(len(time), dtype=bool)
    order = np.argsort(gti[:, 0])
    starts, stops = gti[order, 0], gti[order, 1]
    k = np.searchsorted(starts, time, side="right") - 1
    valid = k >= 0
    kk = np.where(valid, k, 0)
    return valid & (time <= stops[kk])


def bin_index(time: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin of each event (−1 outside ``[edges[0], edges[-1]]``; the last edge belongs
    to the last bin).  Uniform bins are found arithmetically, not by search."""
    n_bins = len(edges) - 1
    step = edges[1] - edges[0]
    idx = np.floor((time - edges[0]) / step).astype(np.int64)
    np.minimum(idx, n_bins - 1, out=idx)  # the partial last bin and its closing edge
    idx[(time < edges[0]) | (time > edges[-1])] = -1
    return idx


NPIX = 1000
WAVE = np.linspace(1320.0, 1420.0, NPIX)  # 0.1 Å per pixel, no airglow inside
SENS = np.full(NPIX, 2.0e14)               # (count/s) per erg/s/cm2/Å per pixel


def _extraction(segment: int = 0, sens=SENS) -> Extraction:
    return Extraction(name="FUVA", segment=segment, source=Region(500.0, 20.0),
                      background=(Region(400.0, 40.0), Region(600.0, 40.0)),
                      pixel=np.arange(NPIX, dtype=float), wavelength=WAVE, sensitivity=sens)


def _events(rng, *, exptime=100.5, src_rate=200.0, bkg_rate=50.0, gti=((0.0, 100.5),),
            n_dq=0, header=None) -> tuple[EventList, dict]:
    """Source events in rows 490–510, background events uniform in rows 350–650."""
    gti = np.asarray(gti, dtype=float)
    good_time = float(np.sum(gti[:, 1] - gti[:, 0]))

    def draw(rate):
        n = rng.poisson(rate * good_time)
        # Uniform over the union of GTIs.
        u = rng.uniform(0, good_time, n)
        cum = np.concatenate([[0], np.cumsum(gti[:, 1] - gti[:, 0])])
        k = np.searchsorted(cum, u, side="right") - 1
        return gti[k, 0] + (u - cum[k])

    t_src = draw(src_rate)
    t_bkg = draw(bkg_rate)
    y_src = rng.uniform(490.5, 509.5, len(t_src))
    y_bkg = rng.uniform(350.0, 650.0, len(t_bkg))
    t = np.concatenate([t_src, t_bkg])
    y = np.concatenate([y_src, y_bkg])
    x = rng.uniform(0, NPIX - 1, len(t))
    dq = np.zeros(len(t), dtype=np.int32)
    dq[:n_dq] = 8192  # flagged events (SDQFLAGS bit), taken from the source
    order = np.argsort(t)
    hdr = fits.Header({"ROOTNAME": "lxyz01abq", "EXPSTART": 58000.0, "EXPTIME": exptime,
                       "OPT_ELEM": "G130M", **(header or {})})
    ev = EventList(path=Path("lxyz01abq_corrtag_a.fits"), header=hdr, time=t[order],
                   x=x[order].astype(np.float32), y=y[order].astype(np.float32),
                   wavelength=np.full(len(t), np.nan), epsilon=np.ones(len(t), np.float32),
                   dq=dq[order], segment=np.zeros(len(t), np.int8), gti=gti,
                   extractions=(_extraction(),), sdqflags=8192 | 16)
    in_src_rows = (y >= 490) & (y < 510)
    in_bkg_rows = ((y >= 380) & (y < 420)) | ((y >= 580) & (y < 620))
    truth = {"n_src_rows": int((in_src_rows & (dq == 0)).sum()),
             "n_bkg_rows": int(in_bkg_rows.sum()), "src_rate": src_rate,
             "bkg_rate": bkg_rate, "good_time": good_time}
    return ev, truth


def test_bins_keep_partial_last_bin_and_gti_exposure():
    edges = bin_edges(0.0, 10.5, 2.0)
    assert np.allclose(edges, [0, 2, 4, 6, 8, 10, 10.5])
    exp = gti_exposure(edges, [[1.0, 5.0], [9.0, 10.5]])
    assert np.allclose(exp, [1, 2, 1, 0, 1, 0.5])
    idx = bin_index(np.array([-0.1, 0.0, 1.99, 10.5, 10.6]), edges)
    assert idx.tolist() == [-1, 0, 0, 5, -1]
    assert in_gti(np.array([0.5, 1.0, 5.0, 6.0, 10.5]), [[9.0, 10.5], [1.0, 5.0]]).tolist() \
        == [False, True, True, False, True]


def test_counts_conserved_and_rates_recovered():
    rng = np.random.default_rng(1)
    ev, truth = _events(rng, n_dq=25)
    lc = make_lightcurve(ev, LightcurveSpec(step=10.0))
    c = lc.columns
    # Every unflagged source-row event is counted exactly once.
    assert c["counts"].sum() == truth["n_src_rows"]
    assert lc.meta["n_source_events"] == truth["n_src_rows"]
    assert len(lc) == 11 and c["bin_width"][-1] == pytest.approx(0.5)
    assert c["exposure"].sum() == pytest.approx(100.5)
    assert c["dq"][-1] & BIN_PARTIAL
    # Background band rows: 80 of the 300 uniform rows; in the 20-row source band the
    # background is 20/80 of what the bands hold.
    bkg_in_src = truth["bkg_rate"] * 20 / 300
    mean_bkg = np.sum(c["background"] * c["exposure"]) / c["exposure"].sum()
    assert mean_bkg == pytest.approx(bkg_in_src, rel=3 * np.sqrt(truth["n_bkg_rows"]) ** -1)
    mean_net = np.sum(c["net"] * c["exposure"]) / c["exposure"].sum()
    assert abs(mean_net - truth["src_rate"]) < 3 * np.sqrt(truth["src_rate"] / 100.5)
    # Flux: mean per-element NET / S; events are spread over all 1000 elements.
    mean_flux = np.sum(c["flux"] * c["exposure"]) / c["exposure"].sum()
    assert mean_flux == pytest.approx(mean_net / NPIX / SENS[0], rel=1e-9)
    assert np.all(c["error"] > 0) and np.all(np.isfinite(c["signal_to_noise"]))


def test_gti_gap_bins_are_flagged_not_zero():
    rng = np.random.default_rng(2)
    ev, truth = _events(rng, exptime=80.0, gti=((0.0, 30.0), (50.0, 100.0)))
    lc = make_lightcurve(ev, LightcurveSpec(step=10.0))
    c = lc.columns
    gap = (c["time"] >= 30) & (c["time"] < 50)
    assert np.all(c["dq"][gap] & BIN_NO_GTI)
    assert np.all(np.isnan(c["net"][gap])) and np.all(np.isnan(c["flux"][gap]))
    assert np.all(np.isfinite(c["net"][~gap]))
    # Bins run to the end of good time even though EXPTIME (80 s) is the GTI total.
    assert c["time"][-1] + c["bin_width"][-1] == pytest.approx(100.0)
    assert c["counts"].sum() == truth["n_src_rows"]


def test_background_scale_is_source_over_background_area():
    ext = _extraction()
    assert ext.background_scale == pytest.approx(20.0 / 80.0)
    # The anchor's inverted b_corr (80/20) would overestimate the background 16-fold.
    rng = np.random.default_rng(3)
    ev, truth = _events(rng, src_rate=0.0, bkg_rate=300.0)
    lc = make_lightcurve(ev, LightcurveSpec(step=100.5))
    # Pure background: the net is consistent with zero only with the right ratio.
    assert abs(lc.columns["net"][0]) < 3 * lc.columns["error"][0]
    anchor_background = lc.columns["background"][0] * 16
    assert anchor_background > 10 * abs(lc.columns["gross"][0] - lc.columns["background"][0])


def test_wavelength_and_airglow_cuts():
    rng = np.random.default_rng(4)
    ev, truth = _events(rng)
    cls = classify(ev)
    lc = make_lightcurve(ev, LightcurveSpec(step=100.5, wave_min=1340.0, wave_max=1400.0,
                                            airglow=((1360.0, 1370.0),)))
    src = (cls.extraction == 0) & cls.is_source & (ev.dq == 0)
    w = cls.wavelength
    expect = src & (w >= 1340) & (w <= 1400) & ~((w >= 1360) & (w <= 1370))
    assert lc.columns["counts"].sum() == expect.sum()
    n_el = ((WAVE >= 1340) & (WAVE <= 1400) & ~((WAVE >= 1360) & (WAVE <= 1370))).sum()
    assert lc.meta["n_elements"] == n_el


def test_empty_events_and_bad_range_name_the_file():
    rng = np.random.default_rng(5)
    ev, _ = _events(rng, src_rate=0.0, bkg_rate=0.0)
    with pytest.raises(InputError, match="lxyz01abq_corrtag_a.fits.*empty"):
        make_lightcurve(ev, LightcurveSpec())
    ev, _ = _events(rng)
    with pytest.raises(InputError, match="empty wavelength range"):
        make_lightcurve(ev, LightcurveSpec(wave_min=1390, wave_max=1310))


def _numpy_sums(ev: EventList, step: float, edges, wave_min, wave_max, airglow):
    """Reference: the same sums from :func:`classify` and ``numpy.bincount``."""
    cls = classify(ev)
    w = cls.wavelength
    good = (cls.extraction >= 0) & ((ev.dq & ev.sdqflags) == 0)
    with np.errstate(invalid="ignore"):
        good &= (w >= wave_min) & (w <= wave_max)
        for lo, hi in airglow:
            good &= ~((w >= lo) & (w <= hi))
    idx = bin_index(ev.time, edges)
    good &= (idx >= 0) & in_gti(ev.time, ev.gti)
    src, bkg = good & cls.is_source, good & ~cls.is_source
    scale = np.array([e.background_scale for e in ev.extractions] + [0.0])[cls.extraction]
    eps = ev.epsilon.astype(float)
    inv = np.where(np.isfinite(cls.sensitivity), eps / cls.sensitivity, 0.0)
    n = len(edges) - 1

    def s(mask, wt=None):
        return np.bincount(idx[mask], None if wt is None else wt[mask], minlength=n)

    return np.array([s(src), s(src, eps), s(src, eps ** 2), s(bkg, scale * eps),
                     s(bkg, (scale * eps) ** 2), s(src, inv), s(src, inv ** 2),
                     s(bkg, scale * inv), s(bkg, (scale * inv) ** 2)], dtype=float)


def test_compiled_event_loop_matches_numpy_reference():
    from hstcal_core.timetag.lightcurve import accumulate_events

    rng = np.random.default_rng(7)
    n = 300_000
    t = np.sort(rng.uniform(0, 500, n))
    ext_a = Extraction("A", 0, Region(300.0, 30.0, slope=0.01),
                       (Region(200.0, 20.0), Region(420.0, 25.0, slope=0.01)),
                       np.arange(2000.0), np.linspace(1100, 1250, 2000),
                       np.where(np.arange(2000) % 97 == 0, 0.0, rng.uniform(1e13, 3e13, 2000)))
    ext_b = Extraction("B", 1, Region(310.0, 20.0), (Region(250.0, 40.0),),
                       np.arange(2000.0), np.linspace(900, 1050, 2000),
                       rng.uniform(1e13, 3e13, 2000))
    ext_c = Extraction("C", 0, Region(330.0, 30.0), (),  # overlaps A: A wins
                       np.arange(2000.0), np.linspace(1250, 1400, 2000),
                       rng.uniform(1e13, 3e13, 2000))
    wave = np.where(rng.uniform(size=n) < 0.5, np.nan, rng.uniform(880, 1420, n))
    ev = EventList(path=Path("x_corrtag_a.fits"),
                   header=fits.Header({"EXPSTART": 58000.0, "EXPTIME": 480.0}),
                   time=t, x=rng.uniform(-50, 2050, n).astype(np.float32),
                   y=rng.uniform(150, 480, n).astype(np.float32), wavelength=wave,
                   epsilon=rng.uniform(0.8, 1.3, n).astype(np.float32),
                   dq=np.where(rng.uniform(size=n) < 0.05, 8192, 0).astype(np.int32),
                   segment=rng.integers(0, 2, n).astype(np.int8),
                   gti=[[0, 100], [150, 480]], extractions=(ext_a, ext_b, ext_c),
                   sdqflags=8192)
    edges = bin_edges(0.0, 480.0, 7.0)
    airglow = ((1208.0, 1225.0), (1000.0, 1010.0))
    ours, counters = accumulate_events(ev, 7.0, edges, 8192, 950.0, 1380.0, airglow)
    ref = _numpy_sums(ev, 7.0, edges, 950.0, 1380.0, airglow)
    assert np.array_equal(ours[0], ref[0])
    assert np.allclose(ours, ref, rtol=1e-9, atol=0)
    assert counters[0] == ref[0].sum() and counters[3] == (ev.dq != 0).sum()


def _table_lookup(values, table, k):
    import numba

    from hstcal_core.algorithms._timebin_kernel import _interp

    @numba.njit
    def run(values, table, k):
        cells, cell_off, scale, x, y, off = table
        out = np.empty(values.shape[0])
        for i in range(values.shape[0]):
            out[i] = _interp(values[i], k, cells, cell_off, scale, x, y, off)
        return out

    return run(values, table, k)


@pytest.mark.parametrize("grid", ["uniform", "padded", "quadratic", "uneven", "nan", "tiny"])
def test_cell_table_lookup_is_numpy_interp(grid):
    """The kernel's O(1) cell-table lookup against numpy.interp (left/right NaN), on
    the grids the readers make and on awkward ones: knots, cell edges, the ends."""
    from hstcal_core.algorithms._timebin_kernel import interp_table

    rng = np.random.default_rng(11)
    n = 500
    x = {"uniform": np.linspace(1100.0, 1250.0, n),
         "padded": np.concatenate([[1099.85], np.linspace(1100.0, 1250.0, n), [1250.15]]),
         "quadratic": 1100.0 + np.arange(n) * 0.3 + 1e-4 * np.arange(n) ** 2,
         "uneven": np.cumsum(rng.uniform(0.001, 1.0, n)),
         "nan": np.linspace(0.0, 10.0, n),
         "tiny": np.array([3.0, 3.0, 4.0])}[grid]
    y = rng.uniform(1e12, 3e12, len(x))
    if grid == "nan":
        y[rng.choice(len(x), 40, replace=False)] = np.nan
    table = interp_table([(np.arange(7.0), np.arange(7.0)), (x, y)])  # table 1 is x, y
    lo, hi = x[0], x[-1]
    v = np.concatenate([rng.uniform(lo - 1, hi + 1, 20000), x, (x[:-1] + x[1:]) / 2,
                        np.nextafter(x, -np.inf), np.nextafter(x, np.inf), [np.nan]])
    ours = _table_lookup(v, table, 1)
    ref = np.interp(v, x, y, left=np.nan, right=np.nan)
    assert np.array_equal(np.isnan(ours), np.isnan(ref))
    ok = ~np.isnan(ref)
    np.testing.assert_allclose(ours[ok], ref[ok], rtol=1e-12, atol=0)
