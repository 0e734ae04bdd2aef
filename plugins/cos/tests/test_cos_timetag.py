"""COS TIME-TAG readers (corrtag FUV/NUV, FUV rawtag) scored on simulated files with truth."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from click.testing import CliRunner
from hstcal_cos.simulate_timetag import simulate_cos_timetag
from hstcal_cos.timetag import FUV_SEGMENT_CODE, read_cos_timetag

from hstcal_core.errors import InputError
from hstcal_core.options import Options
from hstcal_core.simulate.timetag import CATEGORIES, DAMAGES, damage_event_file
from hstcal_core.timetag.events import EventList, TimeTagInput, classify

SMALL = dict(exptime=200.0, source_rate=40.0, background_rate=2e-6, flagged_rate=2.0)


@pytest.fixture(scope="module")
def fuv(tmp_path_factory):
    out = tmp_path_factory.mktemp("fuv")
    return simulate_cos_timetag(out, seed=11, model="flare", time=80.0, amplitude=3.0,
                                decay=20.0, **SMALL)[0]


@pytest.fixture(scope="module")
def nuv(tmp_path_factory):
    out = tmp_path_factory.mktemp("nuv")
    return simulate_cos_timetag(out, detector="NUV", seed=12, **SMALL)[0]


def _read(truth, which=0, detector=None):
    detector = detector or truth.detector.split("_")[1].upper()
    return read_cos_timetag(detector, TimeTagInput(truth.rootname, (truth.files[which],)))


def _assert_classified_as_truth(events: EventList, truth) -> None:
    c = classify(events)
    assert np.array_equal(c.extraction, truth.extraction)
    assert np.array_equal(c.is_source, truth.is_source)
    for k, ext in enumerate(events.extractions):
        for band, flag in (("source", True), ("background", False)):
            mine = (c.extraction == k) & (c.is_source == flag)
            for name, code in CATEGORIES.items():
                got = int((truth.events.category[mine] == code).sum())
                assert got == truth.counts[ext.name][band][name], (ext.name, band, name)


def test_fuv_pair_positions_wavelengths_and_regions(fuv):
    events = _read(fuv, which=1)  # segment B given: A is found next to it
    assert [p.name for p in events.sources] == [f.name for f in fuv.files]
    assert len(events) == len(fuv.events)
    assert np.array_equal(events.time, fuv.events.time)
    assert np.array_equal(events.x, fuv.events.x.astype(np.float32))
    assert np.array_equal(events.y, fuv.events.y.astype(np.float32))
    assert np.array_equal(events.segment, fuv.events.segment)
    assert np.array_equal(events.gti, fuv.gti)
    assert events.exptime == pytest.approx(fuv.exptime)
    assert events.header["EXPFLAG"] == "NORMAL"
    with fits.open(fuv.files[2]) as x1d:
        rows = {r["SEGMENT"]: r for r in x1d[1].data}
        header = x1d[1].header
        for ext in events.extractions:
            letter = ext.name[-1]
            assert ext.segment == FUV_SEGMENT_CODE[ext.name]
            assert np.array_equal(ext.wavelength, rows[ext.name]["WAVELENGTH"])
            # calcos: x1d element i sits at XFULL = i - X_OFFSET + DPIXEL1
            assert np.array_equal(ext.pixel, np.arange(16384) + header[f"DPIXEL1{letter}"])
            sens = rows[ext.name]["NET"].astype(float) / rows[ext.name]["FLUX"]
            assert np.allclose(ext.sensitivity, sens)
            assert ext.source.center == header[f"SP_LOC_{letter}"]
            assert ext.source.height == header[f"SP_HGT_{letter}"]
            assert [b.center for b in ext.background] == [header[f"B_BKG1_{letter}"],
                                                           header[f"B_BKG2_{letter}"]]
    # XFULL, not XCORR: the event wavelengths agree with the x1d dispersion at x
    c = classify(events)
    on = c.extraction >= 0
    ext_of = np.array([e.wavelength_at(events.x) for e in events.extractions])
    expected = ext_of[np.maximum(c.extraction, 0), np.arange(len(events))]
    assert np.allclose(c.wavelength[on], expected[on], atol=1e-3, equal_nan=True)
    assert events.sdqflags & 8192 and events.sdqflags & 512  # SDQFLAGS | calcos serious


def test_fuv_classify_matches_injected_truth(fuv):
    events = _read(fuv)
    _assert_classified_as_truth(events, fuv)
    flagged = fuv.events.category == CATEGORIES["flagged"]
    assert np.all(events.dq[flagged] & events.sdqflags)
    assert not np.any(events.dq[~flagged])
    airglow = fuv.events.category == CATEGORIES["airglow"]
    lya = airglow & (events.segment == FUV_SEGMENT_CODE["FUVB"])
    assert np.all(np.abs(events.wavelength[lya] - 1215.67) < 2.0)
    assert fuv.counts["FUVB"]["background"]["airglow"] > 0  # airglow reaches the bkg rows


def test_fuv_segment_b_absent(tmp_path):
    truth = simulate_cos_timetag(tmp_path, seed=3, segments="A", **SMALL)[0]
    events = _read(truth)
    assert [e.name for e in events.extractions] == ["FUVA"]
    assert len(events.sources) == 2
    _assert_classified_as_truth(events, truth)


def test_nuv_three_stripes_and_calcos_slope_conventions(nuv):
    events = _read(nuv)
    assert [e.name for e in events.extractions] == ["NUVA", "NUVB", "NUVC"]
    assert np.all(events.segment == 0)
    with fits.open(nuv.files[1]) as x1d:
        h = x1d[1].header
        assert x1d[1].data["NELEM"][0] == 1274
        for ext in events.extractions:
            letter = ext.name[-1]
            slope = h[f"SP_SLP_{letter}"]
            assert slope != 0
            # extract.py: SP_LOC at column 1274//2 - X_OFFSET; B_BKG at NUV_X/2
            assert ext.source.center == pytest.approx(h[f"SP_LOC_{letter}"] - slope * 537)
            assert ext.background[0].center == pytest.approx(h[f"B_BKG1_{letter}"] - slope * 512)
            assert ext.pixel[0] == pytest.approx(-100 + h[f"DPIXEL1{letter}"])
    _assert_classified_as_truth(events, nuv)


def test_nuv_g230l_uses_stripes_a_and_b(tmp_path):
    truth = simulate_cos_timetag(tmp_path, detector="NUV", opt_elem="G230L", cenwave=2950,
                                 seed=4, **SMALL)[0]
    events = _read(truth)
    assert [e.name for e in events.extractions] == ["NUVA", "NUVB"]
    _assert_classified_as_truth(events, truth)


def test_rawtag_registration_recovers_the_distortion(tmp_path):
    truth = simulate_cos_timetag(tmp_path, seed=5, rawtag=True, source_rate=150.0,
                                 exptime=300.0, segments="A", raw_offset=41.75,
                                 raw_stretch=-0.0025)[0]
    events = _read(truth)
    # RAWX is whole pixels: the registered x is within half a pixel (+ sub-pixel error);
    # below x = 60 the simulated RAWX fell off the detector (clipped to 0)
    on_detector = truth.events.x > 60
    error = (events.x - truth.events.x)[on_detector]
    assert np.percentile(np.abs(error), 99) < 0.8
    assert abs(np.median(error)) < 0.1
    assert any("registered on the x1d GCOUNTS" in n for n in events.notes)
    assert np.all(events.epsilon == 1)
    c = classify(events)
    source = c.is_source & (c.extraction == 0)
    injected = truth.counts["FUVA"]["source"]
    assert int(source.sum()) == pytest.approx(sum(injected.values()), rel=0.01)


@pytest.mark.parametrize("problem", ["zero", "no_events_ext", "instrument", "detector",
                                     "non_monotonic", "missing_x1d"])
def test_bad_inputs_raise_input_error_naming_the_file(tmp_path, problem):
    truth = simulate_cos_timetag(tmp_path, seed=6, segments="A", exptime=50.0,
                                 source_rate=5.0, background_rate=1e-7, flagged_rate=0.0)[0]
    corrtag, x1d = truth.files
    detector = "FUV"
    if problem == "missing_x1d":
        x1d.unlink()
        match = "missing x1d"
    elif problem == "detector":
        detector = "NUV"
        match = "FUV segment|expected COS/NUV"
    elif problem == "instrument":
        with fits.open(corrtag, mode="update") as hdul:
            hdul[0].header["INSTRUME"] = "STIS"
        match = "expected COS/FUV"
    else:
        damage_event_file(corrtag, problem)
        match = DAMAGES[problem]
    with pytest.raises(InputError, match=match) as info:
        read_cos_timetag(detector, TimeTagInput(truth.rootname, (corrtag,)))
    assert corrtag.name in str(info.value)


def test_calibrate_hook_dispatch(hstcal_registry, fuv):
    hooks = hstcal_registry.hooks
    events = hooks.calibrate(detector=hstcal_registry.entry("cos_fuv").detector,
                             exposure=TimeTagInput(fuv.rootname, (fuv.files[0],)),
                             options=Options())
    assert isinstance(events, EventList) and len(events) == len(fuv.events)
    # not a TIME-TAG input, or not a COS detector: the COS hook declines
    from hstcal_cos import calibrate

    assert calibrate(hstcal_registry.entry("cos_fuv").detector, fuv.files[0], Options()) is None
    assert calibrate(hstcal_registry.entry("stis_fuv_mama").detector,
                     TimeTagInput(fuv.rootname, (fuv.files[0],)), Options()) is None


def test_simulate_cli_writes_timetag_files(tmp_path):
    from hstcal_core.cli import main

    result = CliRunner().invoke(main, ["simulate", "--instrument", "cos_nuv", "--kind",
                                       "timetag", "--count", "1", "--seed", "2", "--out",
                                       str(tmp_path), "-p", "exptime=60", "-p",
                                       "source_rate=5", "-p", "model=sinusoid",
                                       "-p", "period=20"])
    assert result.exit_code == 0, result.output
    assert "wrote 2 file(s)" in result.output
    assert (tmp_path / "truth.json").exists()
    assert sorted(p.name for p in tmp_path.glob("*.fits")) == ["lx00200sq_corrtag.fits",
                                                               "lx00200sq_x1d.fits"]


def test_companions_only_and_rawtag_segment_without_x1d_row(tmp_path):
    truth = simulate_cos_timetag(tmp_path, seed=8, rawtag=True, segments="A", exptime=100.0,
                                 source_rate=100.0)[0]
    rawtag, x1d = truth.files
    # given just the x1d, the rawtag next to it is found
    events = read_cos_timetag("FUV", TimeTagInput(truth.rootname, (x1d,)))
    assert events.sources == [rawtag, x1d]
    # a segment B rawtag the x1d has no row for is left out, with a note
    with fits.open(rawtag) as hdul:
        hdul[0].header["SEGMENT"] = "FUVB"
        hdul.writeto(tmp_path / f"{truth.rootname}_rawtag_b.fits")
    events = read_cos_timetag("FUV", TimeTagInput(truth.rootname, (rawtag,)))
    assert any("no FUVB row in the x1d" in n for n in events.notes)
    assert len(events) == len(truth.events)
