"""HST's ground track from the SPT orbital elements (hstcal_core.algorithms.orbit).

Real data: the jitter tables (``*_jit.fits*``) give HST's subpoint latitude and longitude
every 3 s, with ``Seconds`` counted from the exposure start (EXPSTART of the exposure
named by the extension's EXPNAME; the jif STARTIME agrees with it to ~1 s).  Two kinds:

* EDPS tables (since 2003, OPUS_VER in the primary header) recompute the position with
  an orbit model at each row time ("Jitter File Format Definition", STScI); ours agrees
  at the row times.
* OMS tables (before 2003, OMS_VER) report the last telemetry sample: a value held for
  3-12 s and received ~6 s late, frozen across telemetry gaps.  Ours agrees with each
  row at some time within the 15 s before it.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.time import Time

from hstcal_core.algorithms.orbit import (
    MJD_1985,
    ORBIT_KEYWORDS,
    REFERENCE_ELEMENTS,
    OrbitalElements,
    elements_at_epoch,
    hst_track,
    inertial_positions,
    orbit_keywords,
    orbital_elements,
    sample_times,
)
from hstcal_core.errors import InputError

DAY_S = 86400.0
# Geodetic minus geocentric latitude of a point 500-620 km up at 28.5°: 0.15°.
GEODETIC_BULGE_DEG = 0.2


def _wrap(degrees):
    return (np.asarray(degrees) + 180.0) % 360.0 - 180.0


# --------------------------------------------------------------------------- real data


def _jitter_exposures(hst: Path) -> list[dict]:
    """Every jitter-table extension under ``hst`` with its SPT and its exposure's EXPSTART."""
    exposures = []
    for jit in sorted(hst.rglob("*_jit.fits*")):
        folder = jit.parent
        expstart = {}
        for science in sorted([*folder.glob("*_raw.fits*"), *folder.glob("*_rawtag*.fits*")]):
            with fits.open(science) as hdul:
                for hdu in hdul:
                    if "EXPSTART" in hdu.header and "EXPNAME" in hdu.header:
                        expstart.setdefault(hdu.header["EXPNAME"].strip().lower()[:8],
                                            hdu.header["EXPSTART"])
        with fits.open(jit) as hdul:
            system = "EDPS" if "OPUS_VER" in hdul[0].header else "OMS"
            association = hdul[0].header["ROOTNAME"].strip().lower()
            for ext, hdu in enumerate(hdul[1:], start=1):
                exposure = hdu.header["EXPNAME"].strip().lower()[:8]
                own = sorted(folder.glob(f"{exposure}?_spt.fits*"))
                spt = own[0] if own else next(iter(sorted(folder.glob(f"{association}_spt.fits*"))),
                                              None)
                if spt is None or exposure not in expstart:
                    continue
                table = hdu.data
                exposures.append({
                    "label": f"{jit.name}[{ext}] {exposure}", "system": system, "spt": spt,
                    "expstart": float(expstart[exposure]),
                    # float64 before adding to an MJD: float32 Seconds + MJD rounds to minutes
                    "seconds": np.asarray(table["Seconds"], dtype=np.float64),
                    "latitude": np.asarray(table["Latitude"], dtype=np.float64),
                    "longitude": np.asarray(table["Longitude"], dtype=np.float64),
                })
    return exposures


def _association_members(spt: Path) -> set[str]:
    with fits.open(spt) as hdul:
        return {hdu.header.get("EXPNAME", "").strip().lower()[:8] for hdu in hdul[1:]}


@pytest.fixture(scope="module")
def jitter_exposures(shared_data):
    exposures = _jitter_exposures(shared_data / "hst")
    if not exposures:
        pytest.skip(f"no jitter table with its SPT and science file under {shared_data / 'hst'}")
    return exposures


@pytest.mark.realdata
def test_jitter_exposures_pair_with_their_own_spt(jitter_exposures):
    # The association SPT (o56502010_spt) serves the exposures it lists; COS has one per exposure.
    assert len(jitter_exposures) >= 6
    for exposure in jitter_exposures:
        member = exposure["label"].split()[-1]
        spt = exposure["spt"]
        assert spt.name.startswith(member) or member in _association_members(spt), exposure["label"]


@pytest.mark.realdata
def test_track_matches_edps_jitter_tables(jitter_exposures):
    """Our one-minute track against the EDPS jitter position interpolated to the same times."""
    edps = [e for e in jitter_exposures if e["system"] == "EDPS"]
    if not edps:
        pytest.skip("no EDPS (post-2003) jitter table in the shared data")
    worst_lat = worst_lon = 0.0
    for exposure in edps:
        elements = orbital_elements(fits.getheader(exposure["spt"]), exposure["spt"])
        seconds = exposure["seconds"]
        start = exposure["expstart"] + seconds[0] / DAY_S
        end = exposure["expstart"] + seconds[-1] / DAY_S
        track = hst_track(elements, start, end)
        assert len(track) >= 15
        at = (track.mjd - exposure["expstart"]) * DAY_S
        jitter_lat = np.interp(at, seconds, exposure["latitude"])
        jitter_lon = np.interp(at, seconds, np.unwrap(exposure["longitude"], period=360.0))
        d_lat = np.abs(track.latitude_deg - jitter_lat)
        d_lon = np.abs(_wrap(track.longitude_deg - jitter_lon))
        assert d_lat.max() < 0.5, exposure["label"]
        assert d_lon.max() < 0.5, exposure["label"]
        assert np.all((track.altitude_km > 500) & (track.altitude_km < 620)), exposure["label"]
        worst_lat, worst_lon = max(worst_lat, d_lat.max()), max(worst_lon, d_lon.max())
    print(f"EDPS jitter: max |Δlat| {worst_lat:.3f}°, max |Δlon| {worst_lon:.3f}°")


@pytest.mark.realdata
def test_track_matches_oms_jitter_tables_within_their_telemetry_lag(jitter_exposures):
    oms = [e for e in jitter_exposures if e["system"] == "OMS"]
    if not oms:
        pytest.skip("no OMS (pre-2003) jitter table in the shared data")
    lag_s, step_s = 15.0, 0.5
    worst, lags = 0.0, []
    for exposure in oms:
        elements = orbital_elements(fits.getheader(exposure["spt"]), exposure["spt"])
        seconds, lat, lon = exposure["seconds"], exposure["latitude"], exposure["longitude"]
        track = hst_track(elements, exposure["expstart"] + (seconds[0] - lag_s) / DAY_S,
                          exposure["expstart"] + seconds[-1] / DAY_S, step_s=step_s)
        track_s = (track.mjd - exposure["expstart"]) * DAY_S
        # Stale rows describe an earlier position than their time: a value repeated for
        # longer than the lag, or any row within the lag after a telemetry gap (OMS fills
        # those with positions from before the gap).
        first_seen = seconds.copy()
        for i in range(1, len(seconds)):
            if lat[i] == lat[i - 1] and lon[i] == lon[i - 1]:
                first_seen[i] = first_seen[i - 1]
        gap_ends = seconds[1:][np.diff(seconds) > 4.0]
        after_gap = np.array([np.any((s >= gap_ends) & (s < gap_ends + lag_s)) for s in seconds])
        fresh = (seconds - first_seen <= lag_s) & ~after_gap
        assert fresh.mean() > 0.95, exposure["label"]
        for i in np.flatnonzero(fresh):
            window = (track_s >= seconds[i] - lag_s - 1e-6) & (track_s <= seconds[i] + 1e-6)
            miss = np.maximum(np.abs(track.latitude_deg[window] - lat[i]),
                              np.abs(_wrap(track.longitude_deg[window] - lon[i])))
            best = int(np.argmin(miss))
            worst = max(worst, miss[best])
            lags.append(seconds[i] - track_s[window][best])
            assert miss[best] < 0.5, f"{exposure['label']} row {i} (Seconds={seconds[i]:.1f})"
    print(f"OMS jitter: max deviation {worst:.3f}° at lags {min(lags):.1f}-{max(lags):.1f} s")


@pytest.mark.realdata
def test_reference_elements_are_those_of_o4er06llq(shared_data):
    spt = shared_data / "hst" / "stis" / "ccd_acq" / "o4er06llq_spt.fits"
    if not spt.is_file():
        pytest.skip(f"{spt} is absent")
    assert orbital_elements(fits.getheader(spt), spt) == REFERENCE_ELEMENTS


@pytest.mark.realdata
def test_positions_are_calcos_hstorbit_of_the_same_file(shared_data):
    from calcos.orbit import HSTOrbit

    headers = sorted((shared_data / "hst").rglob("*_spt.fits*"))
    shm = shared_data / "hst" / "wfpc2" / "waivered.fits"  # WFPC2 SHM (FILETYPE SHP)
    assert headers, "no SPT file in the shared data"
    for path in [*headers, *([shm] if shm.is_file() else [])]:
        elements = orbital_elements(fits.getheader(path), path)
        calcos_orbit = HSTOrbit(str(path))
        mjd = elements.epoch_mjd + np.array([0.5, 1.25, 3.0])
        expected = np.array([calcos_orbit.getPos(t)[0] for t in mjd])
        np.testing.assert_array_equal(inertial_positions(elements, mjd), expected,
                                      err_msg=path.name)


@pytest.mark.realdata
def test_wfpc2_shm_header_gives_a_plausible_track(shared_data):
    shm = shared_data / "hst" / "wfpc2" / "waivered.fits"
    if not shm.is_file():
        pytest.skip(f"{shm} is absent")
    header = fits.getheader(shm)
    assert header["FILETYPE"].strip() in {"SHP", "SHM"}
    elements = orbital_elements(header, shm)
    # PSTRTIME, the predicted start, as yyyy.ddd:hh:mm:ss
    start = Time(header["PSTRTIME"].strip().replace(".", ":", 1), format="yday", scale="utc").mjd
    assert abs(start - elements.epoch_mjd) < 7  # elements are refreshed every few days
    track = hst_track(elements, start, start + 0.1)
    assert np.all((track.altitude_km > 500) & (track.altitude_km < 620))
    assert np.abs(track.latitude_deg).max() < elements.inclination_deg + GEODETIC_BULGE_DEG


# --------------------------------------------------------------------------- synthetic


@pytest.fixture(scope="module")
def day_track():
    epoch = REFERENCE_ELEMENTS.epoch_mjd
    return hst_track(REFERENCE_ELEMENTS, epoch, epoch + 1.0)


def test_a_day_of_track_stays_at_hst_altitude(day_track):
    assert len(day_track) == 1441
    assert 570 < day_track.altitude_km.min() and day_track.altitude_km.max() < 630
    # perigee/apogee (e = 0.0018, ±13 km) and the equatorial bulge (±5 km): not constant
    assert np.ptp(day_track.altitude_km) > 15


def test_latitude_reaches_but_never_exceeds_the_inclination(day_track):
    inclination = REFERENCE_ELEMENTS.inclination_deg
    assert inclination == pytest.approx(28.45, abs=0.01)
    peak = np.abs(day_track.latitude_deg).max()
    # geodetic latitude of a point above latitude i is up to 0.15° larger than i
    assert inclination - 0.05 < peak < inclination + GEODETIC_BULGE_DEG
    assert day_track.latitude_deg.min() < -inclination + 0.05


def test_longitude_wraps_into_minus_180_to_180(day_track):
    lon = day_track.longitude_deg
    assert np.all((lon >= -180.0) & (lon < 180.0))
    assert lon.min() < -170 and lon.max() > 170  # a day covers all longitudes
    # no 360° jumps apart from wraps: HST moves ~4° per minute over the ground
    steps = np.abs(_wrap(np.diff(lon)))
    assert steps.max() < 6.0


def test_orbital_period_from_the_track(day_track):
    lat = day_track.latitude_deg
    rising = np.flatnonzero((lat[:-1] < 0) & (lat[1:] >= 0))
    # linear interpolation of each ascending-node crossing between one-minute samples
    frac = -lat[rising] / (lat[rising + 1] - lat[rising])
    crossings = day_track.mjd[rising] + frac * (day_track.mjd[rising + 1] - day_track.mjd[rising])
    period_min = np.diff(crossings).mean() * 1440.0
    assert len(rising) >= 14
    assert 95.0 < period_min < 97.0
    assert period_min == pytest.approx(REFERENCE_ELEMENTS.orbital_period_s / 60.0, abs=0.5)


def test_track_arrays_are_float64_and_aligned():
    track = hst_track(REFERENCE_ELEMENTS, 50875.1, 50875.1 + 601.0 / DAY_S)
    for values in (track.mjd, track.latitude_deg, track.longitude_deg, track.altitude_km):
        assert values.dtype == np.float64 and values.shape == (12,)
    np.testing.assert_array_equal(track.mjd, sample_times(50875.1, 50875.1 + 601.0 / DAY_S))


@pytest.mark.parametrize("duration_s, expected_offsets_s", [
    (150.0, [0, 60, 120, 150]),          # end appended
    (120.0, [0, 60, 120]),               # end is a sample: not repeated
    (120.0004, [0, 60, 120.0004]),       # within 1 ms of a sample: the end replaces it
    (0.0, [0]),                          # a single instant
    (59.0, [0, 59]),
])
def test_sample_times_steps_and_end(duration_s, expected_offsets_s):
    start = 55600.25
    times = sample_times(start, start + duration_s / DAY_S)
    assert times[0] == start and times[-1] == start + duration_s / DAY_S
    np.testing.assert_allclose((times - start) * DAY_S, expected_offsets_s, atol=1e-5)
    assert np.all(np.diff(times) > 0)


def test_sample_times_custom_step():
    start = 55600.0
    offsets = (sample_times(start, start + 10.0 / DAY_S, step_s=3.0) - start) * DAY_S
    np.testing.assert_allclose(offsets, [0, 3, 6, 9, 10], atol=1e-5)


@pytest.mark.parametrize("start, end, step, word", [
    (55600.0, 55599.0, 60.0, "end_mjd"),
    (55600.0, 55601.0, 0.0, "step_s"),
    (55600.0, 55601.0, -60.0, "step_s"),
    (math.nan, 55601.0, 60.0, "start_mjd"),
    (55600.0, math.inf, 60.0, "end_mjd"),
])
def test_bad_track_arguments_are_named(start, end, step, word):
    with pytest.raises(ValueError, match=word):
        hst_track(REFERENCE_ELEMENTS, start, end, step_s=step)


def test_missing_keywords_are_all_named():
    header = fits.Header(list(orbit_keywords(REFERENCE_ELEMENTS).items()))
    del header["HSTHORB"], header["SEMILREC"]
    with pytest.raises(InputError) as caught:
        orbital_elements(header, path="o1234567q_spt.fits")
    message = str(caught.value)
    assert "HSTHORB" in message and "SEMILREC" in message
    assert "ARGPERIG" not in message
    assert message.startswith("o1234567q_spt.fits: ")
    assert caught.value.path == Path("o1234567q_spt.fits")


def test_missing_everything_without_a_path():
    with pytest.raises(InputError) as caught:
        orbital_elements(fits.Header())
    assert caught.value.path is None
    assert all(keyword in str(caught.value) for keyword in ORBIT_KEYWORDS)


def test_non_numeric_and_non_orbits_are_refused():
    values = orbit_keywords(REFERENCE_ELEMENTS)
    with pytest.raises(InputError, match="MEANANOM='n/a'"):
        orbital_elements({**values, "MEANANOM": "n/a"}, path="x_spt.fits")
    zeros = {keyword: 0.0 for keyword in values}
    with pytest.raises(InputError, match="no orbit"):
        orbital_elements(zeros, path="x_spt.fits")


def test_keywords_round_trip_through_a_fits_header(tmp_path):
    header = fits.Header()
    for keyword, value in orbit_keywords(REFERENCE_ELEMENTS).items():
        header[keyword] = (value, ORBIT_KEYWORDS[keyword])
    path = tmp_path / "sim_spt.fits"
    fits.PrimaryHDU(header=header).writeto(path)
    assert orbital_elements(fits.getheader(path), path) == REFERENCE_ELEMENTS
    # a plain mapping with lower-case keys works too
    lower = {k.lower(): v for k, v in orbit_keywords(REFERENCE_ELEMENTS).items()}
    assert orbital_elements(lower) == REFERENCE_ELEMENTS


def test_elements_at_epoch_moves_only_the_epoch():
    epoch = 58849.0  # 2020-01-01
    moved = elements_at_epoch(REFERENCE_ELEMENTS, epoch)
    assert moved.epoch_mjd == pytest.approx(epoch, abs=1e-9)
    assert moved.epchtime == (epoch - MJD_1985) * DAY_S
    for name in OrbitalElements.__dataclass_fields__:
        if name != "epchtime":
            assert getattr(moved, name) == getattr(REFERENCE_ELEMENTS, name)
    assert elements_at_epoch(moved, REFERENCE_ELEMENTS.epoch_mjd) == REFERENCE_ELEMENTS
    # the same orbit, in inertial space, the same time after each epoch
    after_s = np.array([0.0, 1234.5, 40000.0])
    np.testing.assert_allclose(
        inertial_positions(moved, epoch + after_s / DAY_S),
        inertial_positions(REFERENCE_ELEMENTS, REFERENCE_ELEMENTS.epoch_mjd + after_s / DAY_S),
        atol=1e-3)
    with pytest.raises(ValueError, match="epoch_mjd"):
        elements_at_epoch(REFERENCE_ELEMENTS, math.nan)


def test_inertial_positions_are_km_on_the_orbit():
    mjd = REFERENCE_ELEMENTS.epoch_mjd + np.linspace(0, 1, 50)
    radius = np.linalg.norm(inertial_positions(REFERENCE_ELEMENTS, mjd), axis=1)
    p, e = REFERENCE_ELEMENTS.semilrec / 1000.0, REFERENCE_ELEMENTS.eccentry
    assert np.all((radius >= p / (1 + e) - 1e-6) & (radius <= p / (1 - e) + 1e-6))
    assert inertial_positions(REFERENCE_ELEMENTS, REFERENCE_ELEMENTS.epoch_mjd).shape == (1, 3)


@pytest.mark.parametrize("epoch", [47900.0, 61000.0, 70000.0])  # 1990, 2025, 2050
def test_no_network_and_no_iers_warning_at_any_date(epoch, monkeypatch):
    """Offline, long after the bundled IERS tables were made, for dates they do not cover."""
    from astropy.utils.iers import iers as iers_module

    def no_download(*args, **kwargs):
        raise AssertionError(f"tried to download {args[:1]}")

    monkeypatch.setattr(iers_module, "download_file", no_download)
    # Ten years on, the bundled IERS-A predictions are stale: astropy would refuse them.
    monkeypatch.setattr(Time, "now", classmethod(lambda cls: Time("2036-06-01", scale="utc")))
    track = hst_track(elements_at_epoch(REFERENCE_ELEMENTS, epoch), epoch, epoch + 0.05)
    assert np.all((track.altitude_km > 570) & (track.altitude_km < 630))
    assert np.all(np.isfinite(track.longitude_deg))
