"""The detector-agnostic TIME-TAG event engine (hstcal_core.simulate.timetag).

Formats (COS corrtag, STIS tag) are tested in the plugins; here: lightcurve models,
sampling, GTIs, categories and the region truth, on a small made-up detector.
"""

import numpy as np
import pytest

from hstcal_core.simulate.timetag import (
    CATEGORIES,
    AirglowLine,
    LightcurveModel,
    Plane,
    SpectrumLayout,
    TimeTagTruth,
    model_from_options,
    region_truth,
    sensitivity_curve,
    synthesize_events,
)
from hstcal_core.timetag.events import Region

GTI = [(0.0, 400.0), (500.0, 1000.0)]
MODELS = [
    LightcurveModel("constant"),
    LightcurveModel("sinusoid", period=150.0, amplitude=0.6),
    LightcurveModel("flare", time=600.0, amplitude=4.0, decay=40.0),
    LightcurveModel("eclipse", start=200.0, duration=150.0, depth=0.8),
]


def _layout(n=512):
    pixel = np.arange(n, dtype=np.float64)
    wavelength = 1200.0 + 0.2 * pixel
    sens = sensitivity_curve(wavelength, peak_area_cm2=1000.0, peak_wavelength=1250.0,
                             width=40.0)
    return SpectrumLayout(name="S", segment=0, pixel=pixel, wavelength=wavelength,
                          sensitivity=sens, flux=np.full(n, 1e-14),
                          source=Region(100.0, 11.0, 0.01),
                          background=(Region(70.0, 9.0, 0.01), Region(130.0, 9.0, 0.01)),
                          profile_sigma=2.0)


PLANE = Plane(0, (-0.5, 511.5), (-0.5, 255.5))


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.kind)
def test_cumulative_is_the_integral_of_the_factor(model):
    t = np.linspace(0.0, 1000.0, 400001)
    f = model.factor(t)
    numeric = np.concatenate([[0.0], np.cumsum(0.5 * (f[1:] + f[:-1]) * np.diff(t))])
    assert np.allclose(model.cumulative(t), numeric, atol=2e-3)


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.kind)
def test_source_times_follow_the_model_inside_the_gtis(model):
    events = synthesize_events([_layout()], [PLANE], gti=GTI, seed=3, source_rate=400.0,
                               model=model, background_rate=0.0, airglow=())
    t = events.time
    assert np.all(np.diff(t) >= 0)
    assert not np.any((t > 400.0) & (t < 500.0))
    edges = np.arange(0.0, 1001.0, 20.0)
    counts = np.histogram(t, edges)[0]
    truth = TimeTagTruth(detector="x", rootname="x", files=[], exptime=900.0, expstart=0.0,
                         gti=np.array(GTI), model=model, source_rate=400.0,
                         source_share={"S": 1.0}, background_rate=0.0, sdqflags=0,
                         flag_bit=0, counts={}, totals={}, expected=events.expected)
    expected = truth.expected_source_counts(edges)
    good = expected > 0
    assert counts[~good].sum() == 0
    chi2 = ((counts[good] - expected[good]) ** 2 / expected[good]).mean()
    assert chi2 < 2.0
    assert abs(expected.sum() - events.expected["source"]) < 1e-6 * expected.sum()


def test_float32_times_stay_inside_their_gti():
    gti = [(0.0, 100.00001), (100.5, 200.0)]
    events = synthesize_events([_layout()], [PLANE], gti=gti, seed=1, source_rate=2000.0,
                               background_rate=1e-3, time_dtype=np.float32)
    t = events.time
    assert np.array_equal(t, t.astype(np.float32).astype(np.float64))
    starts = np.float32([g[0] for g in gti]).astype(float)
    stops = np.float32([g[1] for g in gti]).astype(float)
    inside = np.zeros(len(t), dtype=bool)
    for a, b in zip(starts, stops):
        inside |= (t >= a) & (t <= b)
    assert inside.all()


def test_categories_counts_and_reproducibility():
    kwargs = dict(gti=GTI, source_rate=50.0, background_rate=2e-4,
                  airglow=(AirglowLine("L", 1250.0, 0.3, 5.0),), flagged_rate=1.0,
                  flag_bit=8, hot_pixels=[(0, 10.0, 100.0)], hot_pixel_rate=0.5)
    a = synthesize_events([_layout()], [PLANE], seed=7, **kwargs)
    b = synthesize_events([_layout()], [PLANE], seed=7, **kwargs)
    c = synthesize_events([_layout()], [PLANE], seed=8, **kwargs)
    assert np.array_equal(a.time, b.time) and np.array_equal(a.y, b.y)
    assert not np.array_equal(a.time[:100], c.time[:100])
    for name, code in CATEGORIES.items():
        n = int((a.category == code).sum())
        mean = a.expected[name]
        assert abs(n - mean) < 5 * np.sqrt(mean) + 1, name
    flagged = a.category == CATEGORIES["flagged"]
    assert np.all(a.dq[flagged] == 8) and np.all(a.dq[~flagged] == 0)
    source = a.category == CATEGORIES["source"]
    mid = 100.0 + 0.01 * a.x[source]
    assert np.all(np.abs(a.y[source] - mid) <= 5.0)  # truncated 0.5 row inside the box
    airglow = a.category == CATEGORIES["airglow"]
    wave = np.interp(a.x[airglow], np.arange(512.0), 1200.0 + 0.2 * np.arange(512.0))
    assert abs(np.median(wave) - 1250.0) < 0.1


def test_region_truth_precedence():
    src = Region(10.0, 4.0)
    bkg = (Region(13.0, 4.0),)  # overlaps the source's upper rows
    other = Region(14.0, 2.0)
    y = np.array([9.0, 11.9, 12.5, 13.5, 14.5, 20.0])
    x = np.zeros(len(y))
    seg = np.zeros(len(y), dtype=np.int8)
    cat = np.array([0, 0, 1, 1, 2, 1], dtype=np.int8)
    extraction, is_source, counts = region_truth(
        x, y, seg, cat, [("A", 0, src, bkg), ("B", 0, other, ())])
    # A's source [8, 12), A's background [11, 15), B's source [13, 15): a source band
    # beats an earlier extraction's background band
    assert extraction.tolist() == [0, 0, 0, 1, 1, -1]
    assert is_source.tolist() == [True, True, False, True, True, False]
    assert counts["A"]["source"]["source"] == 2
    assert counts["A"]["background"]["background"] == 1
    assert counts["B"]["source"] == {"source": 0, "background": 1, "airglow": 1, "flagged": 0}


def test_bad_arguments():
    with pytest.raises(ValueError, match="kind"):
        LightcurveModel("wobble")
    with pytest.raises(ValueError, match="amplitude"):
        LightcurveModel("sinusoid", amplitude=2.0)
    with pytest.raises(ValueError, match="gti"):
        synthesize_events([_layout()], [PLANE], gti=[(10.0, 5.0)], seed=0, source_rate=1.0)
    assert model_from_options({"model": "flare", "flare_time": "5", "decay": 2}) == \
        LightcurveModel("flare", time=5.0, decay=2.0)
