"""STIS MAMA TIME-TAG reader (``_tag`` → events) scored on simulated files with truth."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from hstcal_stis.simulate_timetag import simulate_stis_timetag
from hstcal_stis.timetag import lowres_coordinates, read_stis_timetag

from hstcal_core.errors import InputError
from hstcal_core.options import Options
from hstcal_core.simulate.timetag import CATEGORIES, DAMAGES, damage_event_file
from hstcal_core.timetag.events import EventList, TimeTagInput, classify

SMALL = dict(exptime=200.0, source_rate=40.0, background_rate=2e-5, hot_pixel_rate=0.5)


@pytest.fixture(scope="module")
def first_order(tmp_path_factory):
    return simulate_stis_timetag(tmp_path_factory.mktemp("g140l"), seed=21, write_flat=True,
                                 model="eclipse", start=50.0, duration=40.0, depth=0.7,
                                 **SMALL)[0]


@pytest.fixture(scope="module")
def echelle(tmp_path_factory):
    return simulate_stis_timetag(tmp_path_factory.mktemp("e140m"), seed=22, opt_elem="E140M",
                                 **SMALL)[0]


def _files(truth):
    return {p.name.split("_")[1].split(".")[0]: p for p in truth.files}


def _read(truth, detector="FUV-MAMA", **options):
    return read_stis_timetag(detector, TimeTagInput(truth.rootname, (_files(truth)["tag"],)),
                             options)


def _assert_classified_as_truth(events, truth):
    c = classify(events)
    assert np.array_equal(c.extraction, truth.extraction)
    assert np.array_equal(c.is_source, truth.is_source)
    for k, ext in enumerate(events.extractions):
        mine = (c.extraction == k) & c.is_source
        for name, code in CATEGORIES.items():
            assert int((truth.events.category[mine] == code).sum()) == \
                truth.counts[ext.name]["source"][name]
    return c


def test_first_order_positions_wavelengths_regions(first_order):
    events = _read(first_order)
    assert np.array_equal(events.time, first_order.events.time)
    assert np.array_equal(events.x, first_order.events.x.astype(np.float32))
    assert np.array_equal(events.y, first_order.events.y.astype(np.float32))
    with fits.open(_files(first_order)["tag"]) as tag, fits.open(_files(first_order)["x1d"]) as x1d:
        axis1 = tag[1].data["AXIS1"]
        row = x1d[1].data[0]
        # high-res AXIS1 = 2k-1, 2k are low-res pixel k-1 (0-based), at ∓0.25
        x, _ = lowres_coordinates(np.array([1, 2, 3]), np.array([1, 2, 3]))
        assert x.tolist() == [-0.25, 0.25, 0.75]
        (ext,) = events.extractions
        assert ext.name == "SPORDER 1"
        assert np.array_equal(ext.pixel, np.arange(1024))
        assert np.array_equal(ext.wavelength, row["WAVELENGTH"])
        assert ext.source.height == row["EXTRSIZE"]
        mid = ext.source.center + ext.source.slope * 511.5
        assert mid == pytest.approx(row["A2CENTER"] - 1, abs=1e-4)
        assert ext.source.slope == pytest.approx(0.004, abs=1e-6)
        offsets = sorted(b.center - ext.source.center for b in ext.background)
        assert offsets == pytest.approx([row["BK1OFFST"], row["BK2OFFST"]])
        # Element i covers pixel i ± ½: the solution is extended half an element
        # beyond both ends along its end segments.
        wave = np.asarray(row["WAVELENGTH"], dtype=float)
        pixel = np.concatenate([[-0.5], np.arange(1024), [1023.5]])
        wave = np.concatenate([[wave[0] - 0.5 * (wave[1] - wave[0])], wave,
                               [wave[-1] + 0.5 * (wave[-1] - wave[-2])]])
        expected = np.interp((axis1 - 1.5) / 2, pixel, wave, left=np.nan, right=np.nan)
        assert np.allclose(events.wavelength, expected, equal_nan=True)
    assert "epsilon=1 (no flat)" in events.notes
    assert np.all(events.epsilon == 1)
    _assert_classified_as_truth(events, first_order)


def test_flat_and_bad_pixel_options(first_order):
    files = _files(first_order)
    events = _read(first_order, flat=str(files["pfl"]), bpixtab=str(files["bpx"]))
    flat = fits.getdata(files["pfl"], 1)
    with fits.open(files["tag"]) as tag:
        a1, a2 = tag[1].data["AXIS1"], tag[1].data["AXIS2"]
    assert np.allclose(events.epsilon, 1.0 / flat[(a2 - 1) // 2, (a1 - 1) // 2], rtol=1e-6)
    flagged = first_order.events.category == CATEGORIES["flagged"]
    assert flagged.sum() > 10
    assert np.all(events.dq[flagged] & events.sdqflags)
    # a hot pixel's DQ marks every event on it, so more than the injected ones may carry it
    assert np.all(events.dq[events.dq != 0] == 16)
    assert files["pfl"] in events.sources and files["bpx"] in events.sources


def test_echelle_orders_from_the_x1d(echelle):
    events = _read(echelle)
    assert [e.name for e in events.extractions] == [f"order {m}" for m in range(129, 85, -1)]
    assert np.all(np.isnan(events.wavelength))
    c = _assert_classified_as_truth(events, echelle)
    claimed = c.extraction >= 0
    assert np.all(np.isfinite(c.wavelength[claimed & (events.x > 0) & (events.x < 1023)]))
    for k in (0, 20, 43):
        ext = events.extractions[k]
        mine = (c.extraction == k) & (events.x > 0) & (events.x < 1023)
        assert np.allclose(c.wavelength[mine], ext.wavelength_at(events.x[mine]))
    airglow = [e.name for e in events.extractions
               if echelle.counts[e.name]["source"]["airglow"] > 0]
    assert airglow == ["order 122", "order 114"]  # Lyα 1215.67, O I 1302-1306 (λc = K/m)


def test_nuv_mama_first_order(tmp_path):
    truth = simulate_stis_timetag(tmp_path, detector="NUV-MAMA", seed=23, **SMALL)[0]
    events = _read(truth, detector="NUV-MAMA")
    assert events.header["DETECTOR"] == "NUV-MAMA"
    _assert_classified_as_truth(events, truth)


@pytest.mark.parametrize("problem", ["zero", "no_events_ext", "detector", "non_monotonic",
                                     "missing_x1d"])
def test_bad_inputs_raise_input_error_naming_the_file(tmp_path, problem):
    truth = simulate_stis_timetag(tmp_path, seed=24, exptime=20.0, source_rate=5.0,
                                  background_rate=1e-6, hot_pixel_rate=0.0)[0]
    files = _files(truth)
    tag = files["tag"]
    detector = "FUV-MAMA"
    if problem == "missing_x1d":
        files["x1d"].unlink()
        match = "missing x1d"
    elif problem == "detector":
        detector = "NUV-MAMA"
        match = "expected STIS/NUV-MAMA"
    else:
        damage_event_file(tag, problem)
        match = DAMAGES[problem]
    with pytest.raises(InputError, match=match) as info:
        read_stis_timetag(detector, TimeTagInput(truth.rootname, (tag,)), {})
    assert tag.name in str(info.value)


def test_calibrate_hook_serves_the_mamas_only(hstcal_registry, first_order):
    hooks = hstcal_registry.hooks
    exposure = TimeTagInput(first_order.rootname, (_files(first_order)["tag"],))
    events = hooks.calibrate(detector=hstcal_registry.entry("stis_fuv_mama").detector,
                             exposure=exposure, options=Options({"flat": None}))
    assert isinstance(events, EventList) and len(events) == len(first_order.events)
    from hstcal_stis import calibrate

    assert calibrate(hstcal_registry.entry("stis_nuv_mama").detector, "x_raw.fits",
                     Options()) is None
    assert hstcal_registry.entry("stis_fuv_mama").simulator is not None
