"""Tests of the synthetic STIS CCD raw files and their truth (hstcal_stis.simulate)."""

from __future__ import annotations

import hashlib
import re
from datetime import datetime

import numpy as np
import pytest
import yaml
from astropy.io import fits

from hstcal_stis.detectors import STIS_CCD
from hstcal_stis.geometry import overscan_regions, raw_shape
from hstcal_stis.simulate import (
    BINNINGS,
    MonthTruth,
    SimTruth,
    load_truth,
    simulate,
    simulate_anneal_month,
    simulate_stis_ccd,
)

ROOTNAME = re.compile(r"^o[0-9a-z]{8}$")


@pytest.fixture(scope="module")
def biases(tmp_path_factory):
    out = tmp_path_factory.mktemp("bias")
    return simulate_stis_ccd(out, kind="bias", count=2, seed=3)


@pytest.fixture(scope="module")
def darks(tmp_path_factory):
    out = tmp_path_factory.mktemp("dark")
    return simulate_stis_ccd(out, kind="dark", count=2, seed=3, start_mjd=56000.0)


def _trim(data, truth):
    return data[truth.trim_rows[0]:truth.trim_rows[1], truth.trim_cols[0]:truth.trim_cols[1]]


# ------------------------------------------------------------------------ file structure

@pytest.mark.parametrize("binning", BINNINGS)
def test_raw_layout_every_binning(tmp_path, binning):
    truth = simulate_stis_ccd(tmp_path, kind="bias", count=1, nimsets=1, seed=1, binning=binning)
    binx, biny = (int(b) for b in binning.split("x"))
    shape = raw_shape(binx, biny)
    assert truth.raw_shape == shape
    regions = overscan_regions(*shape, binx, biny, "D")
    assert truth.trim_rows == regions.trim_rows and truth.trim_cols == regions.trim_cols
    assert truth.bias_structure.shape == truth.shape
    with fits.open(truth.files[0], do_not_scale_image_data=True) as hdul:
        assert [h.name for h in hdul] == ["PRIMARY", "SCI", "ERR", "DQ"]
        sci = hdul["SCI", 1]
        assert sci.data.dtype == np.dtype(">i2") and sci.data.shape == shape
        assert sci.header["BITPIX"] == 16 and sci.header["BZERO"] == 32768
        for name in ("ERR", "DQ"):
            ext = hdul[name, 1]
            assert ext.header["NAXIS"] == 0 and ext.data is None
            assert ext.header["EXTVER"] == 1 and ext.header["BITPIX"] == 16
            assert (ext.header["NPIX2"], ext.header["NPIX1"]) == shape
        primary = hdul[0].header
        assert (primary["BINAXIS1"], primary["BINAXIS2"]) == (binx, biny)
        assert sci.header["LTM1_1"] == 1.0 / binx and sci.header["LTM2_2"] == 1.0 / biny
    with fits.open(truth.files[0]) as hdul:
        assert hdul["SCI", 1].data.dtype == np.uint16


def test_ltv_matches_real_files(tmp_path):
    # Unbinned real raws: LTV1=19, LTV2=20; binned 2x1 o56502010: LTV1=10.75, LTV2=10.
    for binning, ltv in (("1x1", (19.0, 20.0)), ("2x1", (10.75, 10.0))):
        truth = simulate_stis_ccd(tmp_path / binning, kind="bias", count=1, nimsets=1,
                                  binning=binning)
        header = fits.getheader(truth.files[0], ("SCI", 1))
        assert (header["LTV1"], header["LTV2"]) == ltv


def test_headers_like_real_raws(biases, darks):
    for truth in (biases, darks):
        for i, path in enumerate(truth.files):
            with fits.open(path) as hdul:
                p = hdul[0].header
                assert p["NEXTEND"] == 3 * truth.nimsets == len(hdul) - 1
                assert ROOTNAME.match(p["ROOTNAME"]) and p["FILENAME"] == path.name
                assert path.name == f"{p['ROOTNAME']}_raw.fits"
                expected = dict(TELESCOP="HST", INSTRUME="STIS", DETECTOR="CCD", FILETYPE="SCI",
                                OBSTYPE="IMAGING", OBSMODE="ACCUM", CCDAMP="D", CCDOFFST=3,
                                CCDGAIN=truth.gain, CRSPLIT=1, NRPTEXP=truth.nimsets,
                                ATODGAIN=0.0, READNSE=0.0, APERTURE="50CCD", SUBARRAY=False,
                                SIZAXIS1=1062, SIZAXIS2=1044, TARGNAME=truth.kind.upper(),
                                CRREJTAB="oref$j3m1403io_crr.fits",
                                PROPOSID=12400 if truth.kind == "bias" else 12401)
                for key, value in expected.items():
                    assert p[key] == value, key
                for switch in ("DQICORR", "BLEVCORR", "BIASCORR", "DARKCORR", "CRCORR"):
                    assert p[switch] == "PERFORM"
                assert p["PROPTTL1"]
                starts, ends = [], []
                for k in range(truth.nimsets):
                    s = hdul["SCI", k + 1].header
                    assert s["EXTNAME"] == "SCI" and s["EXTVER"] == k + 1
                    assert s["BUNIT"] == "COUNTS" and s["NCOMBINE"] == 1
                    assert s["EXPTIME"] == truth.exptime_s
                    assert np.isclose(s["OCCDHTAV"], truth.temperature_c[i, k], atol=1e-3)
                    assert np.isclose(s["EXPSTART"], truth.expstart_mjd[i, k])
                    assert np.isclose((s["EXPEND"] - s["EXPSTART"]) * 86400, s["EXPTIME"])
                    starts.append(s["EXPSTART"])
                    ends.append(s["EXPEND"])
                assert p["TEXPSTRT"] == starts[0] and p["TEXPEND"] == ends[-1]
                assert p["TEXPTIME"] == truth.exptime_s * truth.nimsets
                assert all(b > a for a, b in zip(ends, starts[1:]))
    assert biases.exptime_s == 0.0 and biases.nimsets == 2
    assert darks.exptime_s == 1100.0 and darks.nimsets == 1
    # File i starts at start_mjd + i * cadence.
    assert np.allclose(darks.expstart_mjd[:, 0], [56000.0, 56001.0])


def test_rootnames_unique_and_deterministic(tmp_path, biases):
    again = simulate_stis_ccd(tmp_path, kind="bias", count=2, seed=3)
    assert again.rootnames == biases.rootnames
    assert len(set(biases.rootnames)) == 2
    other = simulate_stis_ccd(tmp_path / "other", kind="bias", count=2, seed=4)
    assert not set(other.rootnames) & set(biases.rootnames)
    # Same seed → byte-identical files.
    for a, b in zip(biases.files, again.files):
        assert hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest()
    # Different seed → different noise, same fixed bias structure.
    assert not np.array_equal(fits.getdata(biases.files[0], 1), fits.getdata(other.files[0], 1))
    assert np.array_equal(other.bias_structure, biases.bias_structure)


# ------------------------------------------------------------------------ bias physics

def test_bias_structure_fixed_per_gain_and_binning(tmp_path, biases):
    again = simulate_stis_ccd(tmp_path / "g1", kind="bias", count=1, seed=99)
    assert np.array_equal(again.bias_structure, biases.bias_structure)
    assert np.array_equal(again.bias_hot_pixels.x, biases.bias_hot_pixels.x)
    assert np.array_equal(again.bias_hot_columns.excess, biases.bias_hot_columns.excess)
    gain4 = simulate_stis_ccd(tmp_path / "g4", kind="bias", count=1, nimsets=1, gain=4)
    assert not np.array_equal(gain4.bias_structure, biases.bias_structure)
    assert gain4.bias_dn == 1500.0 and biases.bias_dn == 1124.0
    # "A couple of DN rms", hot columns +3..+30 DN, a few hot bias pixels.
    assert 1.0 < float(np.std(biases.bias_structure)) < 4.0
    assert 3 <= len(biases.bias_hot_columns) <= 10
    assert np.all((biases.bias_hot_columns.excess >= 3) & (biases.bias_hot_columns.excess <= 30))
    assert 5 <= len(biases.bias_hot_pixels) <= 100


def test_bias_level_trend_in_science_and_overscan(biases):
    with fits.open(biases.files[0]) as hdul:
        raw = hdul["SCI", 2].data.astype(np.float64)
    level = biases.bias_level(0, 2)
    regions = overscan_regions(*raw.shape, 1, 1, "D")
    b0, b1 = regions.bias_cols
    overscan = raw[:, b0:b1].mean(axis=1)
    # The physical overscan follows the level (a few DN of trend along rows).
    slope = np.polyfit(np.arange(raw.shape[0]), overscan, 1)[0] * (raw.shape[0] - 1)
    assert np.isclose(slope, biases.bias_trend_dn[0, 1], atol=1.0)
    assert 1.0 < abs(biases.bias_trend_dn[0, 1]) < 6.0
    assert abs(np.mean(overscan - level)) < 0.2
    # Virtual overscan rows: level + read noise only.
    v0, v1 = regions.virtual_rows
    virtual = raw[v0:v1] - level[v0:v1, None]
    assert abs(virtual.mean()) < 0.2
    assert np.isclose(virtual.std(), biases.read_noise_dn, rtol=0.05)
    # Science area: level + structure + read noise (+ a few readout CRs).
    clean = ~biases.cr_mask(0, 2)
    resid = (_trim(raw, biases) - biases.expected_dn(0, 2))[clean]
    assert abs(resid.mean()) < 0.1
    assert np.isclose(resid.std(), biases.read_noise_dn, rtol=0.05)


def test_bias_crs_only_during_readout(biases):
    # 1.2 CR/cm²/s over half the 29 s readout on 4.62 cm²: ~80 per imset.
    expected = 1.2 * STIS_CCD.geometric_area_cm2 * 0.5 * STIS_CCD.readout_time_s
    per_imset = biases.cr_file.size / (len(biases.files) * biases.nimsets)
    assert abs(per_imset - expected) < 4 * np.sqrt(expected / 4)


# ------------------------------------------------------------------------ dark physics

def test_dark_truth_and_hot_pixels(darks):
    rate = darks.dark_rate
    assert rate.shape == (1024, 1024) and rate.dtype == np.float32
    base = np.median(rate)
    assert 0.025 < base < 0.035
    # Gentle gradient along rows: higher near the serial register (low y).
    assert np.median(rate[:100]) > np.median(rate[-100:])
    hot = darks.hot_pixels
    assert hot is darks.dark_hot_pixels
    assert 0.0025 < len(hot) / rate.size < 0.0035
    assert hot.excess.min() >= 0.02 and hot.excess.max() <= 5.0
    assert 1 <= len(darks.dark_hot_columns) <= 10
    # Without hot pixels and columns, what is left is constant along every row.
    smooth = (rate.astype(np.float64) - hot.image(rate.shape)
              - darks.dark_hot_columns.image(rate.shape))
    assert np.allclose(smooth, smooth[:, :1], atol=1e-6)
    assert np.all(np.isneginf(darks.dark_hot_onset_mjd))


def test_dark_signal_in_data(darks):
    with fits.open(darks.files[0]) as hdul:
        raw = hdul["SCI", 1].data.astype(np.float64)
    expected = darks.expected_dn(0, 1)
    clean = ~darks.cr_mask(0, 1)
    resid = (_trim(raw, darks) - expected)[clean]
    assert abs(resid.mean()) < 0.1
    # CR pixels carry the truth charge (above a detection-like threshold).
    strong = darks.cr_mask(0, 1, threshold_dn=50 * darks.read_noise_dn)
    measured = (_trim(raw, darks) - expected)[strong]
    truth_dn = darks.cr_image(0, 1)[strong]
    assert np.median(np.abs(measured - truth_dn) / truth_dn) < 0.05


def test_temperature_scaling(tmp_path):
    truth = simulate_stis_ccd(tmp_path, kind="dark", count=6, seed=5, binning="2x2",
                              cr_rate_per_cm2_s=0.0, temperature_c=(18.0, 4.0), exptime=3000.0)
    ratios, temps = [], []
    for i, path in enumerate(truth.files):
        data = _trim(fits.getdata(path, 1).astype(np.float64), truth)
        dark_e = (data - truth.bias_level(i, 1, trimmed=True)[:, None]
                  - truth.bias_structure) * truth.atodgain
        ratios.append(dark_e.mean() / (truth.dark_rate.mean() * truth.exptime_s))
        temps.append(truth.temperature_c[i, 0])
        assert np.isclose(truth.temperature_factor(i), 1 + 0.07 * (temps[-1] - 18.0))
    slope, intercept = np.polyfit(np.array(temps) - 18.0, ratios, 1)
    assert np.isclose(intercept, 1.0, atol=0.01)
    assert np.isclose(slope, 0.07, atol=0.005)


def test_binned_dark_sums_unbinned_pixels(tmp_path, darks):
    binned = simulate_stis_ccd(tmp_path, kind="dark", count=1, seed=3, binning="2x2")
    assert binned.dark_rate.shape == (512, 511)
    assert np.isclose(np.median(binned.dark_rate), 4 * np.median(darks.dark_rate), rtol=0.05)
    # Same seed, same physical hot columns: trimmed binned column j holds unbinned
    # columns 2j+1, 2j+2 (LTV1 = 10.75), and each binned pixel sums two rows.
    x = darks.dark_hot_columns.x
    inside = (x >= 1) & (x <= 1022)
    assert np.array_equal(binned.dark_hot_columns.x, (x[inside] - 1) // 2)
    assert np.allclose(binned.dark_hot_columns.excess, 2 * darks.dark_hot_columns.excess[inside])
    assert np.isclose(binned.dark_rate.sum(dtype=np.float64),
                      darks.dark_rate[:, 1:1023].sum(dtype=np.float64), rtol=1e-5)


def test_hot_pixel_growth_recorded(tmp_path):
    truth = simulate_stis_ccd(tmp_path, kind="dark", count=2, seed=2, binning="2x2",
                              cadence_days=7.0, hot_pixel_growth_per_day=1e-5)
    onset = truth.dark_hot_onset_mjd
    late = np.isfinite(onset)
    assert late.sum() > 10
    assert np.all(onset[late] >= truth.expstart_mjd.min())
    later = truth.dark_rate_at(float(truth.expstart_mjd[1, 0]))
    assert later.sum() > truth.dark_rate.sum()


# ------------------------------------------------------------------------------ truth

def test_truth_round_trip(darks):
    loaded = load_truth(darks.files[0].parent)
    assert isinstance(loaded, SimTruth)
    assert loaded.files == darks.files and loaded.rootnames == darks.rootnames
    for name in ("bias_structure", "dark_rate", "cr_y", "cr_x", "cr_charge_dn", "cr_id",
                 "cr_file", "cr_extver", "temperature_c", "expstart_mjd", "bias_trend_dn",
                 "dark_hot_onset_mjd"):
        assert np.array_equal(getattr(loaded, name), getattr(darks, name)), name
    assert np.array_equal(loaded.dark_hot_pixels.excess, darks.dark_hot_pixels.excess)
    assert np.array_equal(loaded.bias_hot_columns.x, darks.bias_hot_columns.x)
    assert loaded.parameters == darks.parameters
    assert np.array_equal(loaded.cr_mask(darks.rootnames[1]), darks.cr_mask(1))


def test_cr_truth_is_sparse_with_table(darks):
    assert darks.cr_y.dtype == np.int16 and darks.cr_charge_dn.dtype == np.float32
    assert np.all(np.diff(darks.cr_id) >= 0)
    table = darks.cr_table(0, 1, threshold_dn=25.0 / darks.atodgain)
    assert set(table) >= {"cr_id", "file", "extver", "n_pixels", "total_dn", "peak_dn", "y", "x"}
    assert np.all(table["file"] == 0) and np.all(table["extver"] == 1)
    # 1100 s dark: ~6000 CRs, typically 4-5 detectable pixels, median ~1000 e-.
    assert 5000 < table["cr_id"].size < 7500
    detected = table["n_pixels"][table["n_pixels"] > 0]
    assert 4 <= np.median(detected) <= 5
    assert 850 < np.median(table["total_dn"][table["total_dn"] > 0]) * darks.atodgain < 1250
    mask = darks.cr_mask(0, 1, threshold_dn=25.0)
    assert mask.shape == darks.shape and mask.dtype == bool
    assert 0.015 < mask.mean() < 0.035
    with pytest.raises(ValueError, match="extver"):
        darks.cr_mask(0, 2)
    with pytest.raises(ValueError, match="not part"):
        darks.cr_mask("onotthere", 1)


# -------------------------------------------------------------------------- validation

@pytest.mark.parametrize("kwargs, name", [
    (dict(kind="flat"), "kind"),
    (dict(gain=2), "gain"),
    (dict(binning="4x4"), "binning"),
    (dict(binning="2by2"), "binning"),
    (dict(count=0), "count"),
    (dict(nimsets=0), "nimsets"),
    (dict(kind="bias", exptime=10.0), "exptime"),
    (dict(kind="dark", exptime=0.0), "exptime"),
    (dict(cadence_days=0.0), "cadence_days"),
    (dict(start_times_mjd=[1.0, 2.0], count=1), "start_times_mjd"),
    (dict(hot_pixel_fraction=2.0), "hot_pixel_fraction"),
    (dict(program_id="AB!"), "program_id"),
])
def test_validation_names_parameter(tmp_path, kwargs, name):
    with pytest.raises(ValueError, match=name):
        simulate(tmp_path, **kwargs)
    assert not list(tmp_path.glob("*_raw.fits"))


def test_dispatcher_accepts_cli_arguments(tmp_path):
    # What `hstcal simulate` passes: kind, count, seed, gain, binning string, start_mjd.
    truth = simulate(tmp_path, kind="bias", count=1, seed=0, gain=1, binning="2x1",
                     start_mjd=55700.0)
    assert truth.binning == "2x1" and truth.raw_shape == (1034, 532)
    assert fits.getheader(truth.files[0])["TEXPSTRT"] == 55700.0
    with pytest.raises(ValueError, match="gain"):
        simulate(tmp_path / "m", kind="month", gain=4)


# ------------------------------------------------------------------------------ month

@pytest.fixture(scope="module")
def small_month(tmp_path_factory):
    out = tmp_path_factory.mktemp("month")
    return simulate_anneal_month(out, seed=1, start_mjd=55600.0, days=28.3,
                                 bias_files_per_week=1, gain4_files_per_biweek=1,
                                 darks_per_week=1)


def _check_month(month: MonthTruth) -> None:
    table = yaml.safe_load(month.anneal_table.read_text())
    assert [entry["index"] for entry in table] == [0, 1, 2]
    for entry in table:
        assert set(entry) == {"index", "start", "end", "darks"}
        assert isinstance(entry["start"], datetime) and isinstance(entry["end"], datetime)
    assert table[0]["end"] == table[1]["start"] and table[1]["end"] == table[2]["start"]
    this = table[1]
    dark_names = {d["exposure"] for d in this["darks"]}
    assert dark_names == {r.upper() for r in month.groups["dark_g1_1x1"].rootnames}
    hour = 1.0 / 24.0
    for truth in month.groups.values():
        for path in truth.files:
            header = fits.getheader(path)
            assert month.start_mjd + hour < header["TEXPSTRT"]
            assert header["TEXPEND"] < month.end_mjd - hour
    names = [p.name for p in month.files]
    assert len(names) == len(set(names))
    try:
        from hstcal_core.reffiles.anneal import read_anneal_table, split_period
    except ImportError:  # pragma: no cover - core anneal module not available
        return
    periods = read_anneal_table(month.anneal_table)
    period = periods[1]
    assert np.isclose(period.start_mjd, month.start_mjd, atol=1e-5)
    weeks = split_period(period, "WK")
    biweeks = split_period(period, "BIWK")
    assert len(weeks) == 4 and len(biweeks) == 2

    def per_period(truth, parts):
        counts = [0] * len(parts)
        for t0, t1 in zip(truth.expstart_mjd[:, 0], truth.expstart_mjd[:, -1]):
            inside = [n for n, p in enumerate(parts) if p.contains(t0) and p.contains(t1)]
            assert len(inside) == 1
            counts[inside[0]] += truth.nimsets
        return counts

    g = month.groups
    assert min(per_period(g["bias_g1_1x1"], weeks)) > 0
    assert per_period(g["bias_g1_2x2"], weeks)[1:] == [0, 0, 0]
    assert per_period(g["bias_g1_2x2"], weeks)[0] > 7  # above the refbias threshold
    assert min(per_period(g["bias_g4_1x1"], biweeks)) > 0
    assert min(per_period(g["dark_g1_1x1"], weeks)) > 0


def test_month_layout(small_month):
    month = small_month
    assert set(month.groups) == {"bias_g1_1x1", "bias_g1_2x2", "bias_g4_1x1", "dark_g1_1x1"}
    g = month.groups
    assert (g["bias_g1_1x1"].gain, g["bias_g1_1x1"].binning) == (1, "1x1")
    assert (g["bias_g1_2x2"].gain, g["bias_g1_2x2"].binning) == (1, "2x2")
    assert (g["bias_g4_1x1"].gain, g["bias_g4_1x1"].binning) == (4, "1x1")
    assert g["dark_g1_1x1"].kind == "dark" and g["dark_g1_1x1"].exptime_s == 1100.0
    _check_month(month)


def test_month_truth_round_trip(small_month):
    loaded = load_truth(small_month.anneal_table.parent)
    assert isinstance(loaded, MonthTruth)
    assert loaded.files == small_month.files
    assert np.isclose(loaded.end_mjd, small_month.end_mjd)
    assert np.array_equal(loaded.groups["dark_g1_1x1"].dark_rate,
                          small_month.groups["dark_g1_1x1"].dark_rate)


@pytest.mark.slow
def test_full_month_default_plan(tmp_path):
    month = simulate(tmp_path, kind="month", count=4, seed=0)
    counts = {name: len(t.files) for name, t in month.groups.items()}
    assert counts == {"bias_g1_1x1": 12, "bias_g1_2x2": 4, "bias_g4_1x1": 4, "dark_g1_1x1": 8}
    _check_month(month)
    size = sum(p.stat().st_size for p in tmp_path.iterdir())
    assert size < 120e6
