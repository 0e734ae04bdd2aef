"""``hstcal run --stage crstats`` on the real HST files of ../shared/data (issue 4).

Through the command line (``click.testing.CliRunner`` on :func:`hstcal_core.cli.main`):
exit status 0 when every input became a record, 1 when some inputs failed (each named
with its reason, after everything else is stored), 2 for a usage error such as an
unknown detector.  The files are read in place; stores go to ``tmp_path``.

What is there (``../shared/data/hst/README.md``): no real CCD dark frames at all.  The
STIS CR-split raws are science spectra (NGC 1068), the ACS/HRC raws science images
(NGC 104), the ACS/SBC darks come from a MAMA, the WFC3/IR IMA is a grism-subarray
ramp (WASP-12), the WFPC2 files are science frames (NGC 4151) and an SHP, and the
NICMOS files are processed single images, not ramps.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from hstcal_core.cli import main

pytestmark = pytest.mark.realdata


def crstats(detector: str, inputs, store: Path, *extra: str):
    """Run the CLI; return the click result."""
    args = ["run", "--instrument", detector, "--stage", "crstats", *map(str, inputs),
            "--store", str(store), *extra]
    return CliRunner().invoke(main, args)


def stored(store: Path):
    """The store's exposures (an empty list when no store was written)."""
    from hstcal_core.census.store import read_exposures

    return read_exposures(store) if store.exists() else []


def failures(result) -> dict[str, str]:
    """``{file name: reason}`` of the ``FAILED   path: reason`` lines."""
    out = {}
    for line in result.output.splitlines():
        if line.startswith("FAILED"):
            what, _, reason = line[len("FAILED"):].strip().partition(": ")
            out[Path(what).name] = reason
    return out


# --------------------------------------------------------------------------- STIS
def test_stis_cr_split_raws_are_recorded_with_their_orbit(shared_data, tmp_path):
    from hstcal_core.census.store import read_crs, read_orbit

    raws = sorted((shared_data / "hst/stis/ccd_crsplit").glob("*_raw.fits.gz"))
    assert len(raws) == 2
    store = tmp_path / "stis.h5"
    refused = crstats("stis_ccd", raws, tmp_path / "refused.h5")  # NGC 1068, not darks
    assert refused.exit_code == 1 and refused.output.count("not a dark (TARGNAME=NGC1068") == 2
    result = crstats("stis_ccd", raws, store, "-p", "darks_only=false")
    assert result.exit_code == 0, result.output
    table = stored(store)
    assert sorted(table["rootname"]) == ["o56502010", "o56502020"]
    crs = read_crs(store)
    for row in table:
        print(f"{row['rootname']}: n_cr {row['n_cr']}, rate {row['rate']:.3f} CR cm-2 s-1 "
              f"over {row['integration_time']:.0f} s, {row['orbit_count']} orbit samples")
        assert row["n_cr"] > 10
        # a CR-split file is one exposure of 2 imsets, each with its own CRs
        mine = np.asarray(crs["rootname"]) == row["rootname"]
        assert set(np.asarray(crs["imset"])[mine].tolist()) == {0, 1}
        # the SPT beside the raw: HST's track through the exposure, in its orbit
        orbit = read_orbit(store, int(row["exposure_id"]))
        assert len(orbit) == row["orbit_count"] >= 10
        assert np.all((orbit["altitude_km"] > 500) & (orbit["altitude_km"] < 650))
        assert np.all(np.abs(orbit["latitude"]) <= 28.7)  # inclination 28.5 deg
        assert orbit["mjd"][0] == pytest.approx(row["start_mjd"], abs=1 / 1440)


def test_a_stis_cr_split_record_spans_every_imset(shared_data, tmp_path):
    from astropy.io import fits

    from hstcal_core.census.store import read_orbit

    raws = sorted((shared_data / "hst/stis/ccd_crsplit").glob("*_raw.fits.gz"))
    store = tmp_path / "stis.h5"
    assert crstats("stis_ccd", raws, store, "-p", "darks_only=false").exit_code == 0
    rows = {r["rootname"]: r for r in stored(store)}
    for raw in raws:
        with fits.open(raw) as hdul:
            texptime = hdul[0].header["TEXPTIME"]
            sci = [h.header for h in hdul if h.name == "SCI"]
        assert texptime == pytest.approx(sum(h["EXPTIME"] for h in sci))
        row = rows[raw.name.split("_")[0]]
        assert row["exptime"] == pytest.approx(texptime)
        assert row["end_mjd"] == pytest.approx(sci[-1]["EXPEND"], abs=1e-6)
        orbit = read_orbit(store, int(row["exposure_id"]))
        assert orbit["mjd"][-1] >= sci[-1]["EXPEND"] - 1 / 1440


# --------------------------------------------------------------------------- ACS
def test_acs_hrc_raws_are_refused_and_nothing_is_appended(shared_data, tmp_path):
    raws = sorted((shared_data / "hst/acs/hrc_raw").glob("*_raw.fits.gz"))
    assert len(raws) == 3
    store = tmp_path / "hrc.h5"
    result = crstats("acs_hrc", raws, store)
    assert result.exit_code == 1, result.output
    failed = failures(result)
    assert sorted(failed) == sorted(p.name for p in raws)  # every file named
    assert len(stored(store)) == 0
    # the two 60 s exposures are grouped, calibrated, and refused as what they are
    for name in ("j8bt05njq_raw.fits.gz", "j8bt06o6q_raw.fits.gz"):
        assert failed[name].startswith("not a dark (TARGNAME=NGC104, IMAGETYP=EXT)")


def test_a_lone_hrc_science_raw_is_refused_as_not_a_dark(shared_data, tmp_path):
    raw = shared_data / "hst/acs/hrc_raw/j8bt09jcq_raw.fits.gz"
    result = crstats("acs_hrc", [raw], tmp_path / "hrc.h5")
    assert result.exit_code == 1
    assert failures(result)[raw.name].startswith("not a dark (TARGNAME=NGC104")


def test_acs_sbc_is_not_a_registered_detector(shared_data, tmp_path):
    from hstcal_core.registry import get_registry

    assert "acs_sbc" not in get_registry().detectors  # ACS registers its CCDs only
    darks = sorted((shared_data / "hst/acs/sbc_dark").glob("*_raw.fits.gz"))
    result = crstats("acs_sbc", darks, tmp_path / "sbc.h5")
    assert result.exit_code == 2
    assert "unknown detector 'acs_sbc'" in result.output
    assert "acs_hrc" in result.output and "acs_wfc" in result.output  # the known ones
    assert not (tmp_path / "sbc.h5").exists()


@pytest.mark.parametrize("detector", ["acs_hrc", "acs_wfc"])
def test_acs_sbc_darks_are_refused_as_a_mama_by_the_ccds(shared_data, tmp_path, detector):
    darks = sorted((shared_data / "hst/acs/sbc_dark").glob("*_raw.fits.gz"))
    assert len(darks) == 3
    store = tmp_path / "sbc.h5"
    result = crstats(detector, darks, store)
    assert result.exit_code == 1, result.output
    failed = failures(result)
    assert sorted(failed) == sorted(p.name for p in darks)
    for reason in failed.values():
        assert reason.startswith("is ACS/SBC, a MAMA photon-counting detector")
        assert "not supported by the cosmic-ray census" in reason
        assert f"({detector} is a CCD)" in reason
    assert len(stored(store)) == 0


# --------------------------------------------------------------------------- WFC3/IR
def test_wfc3_ir_ima_gives_one_record(shared_data, tmp_path):
    """iccz11q4q: SQ256SUB, RAPID, NSAMP 4 (3 increments of 0.278 s): ~0.2 CRs expected
    (1.2 cm-2 s-1 x 0.21 cm2 x 0.83 s), and the WASP-12 grism spectrum is no jump."""
    from hstcal_wfc3.detectors import WFC3_IR

    store = tmp_path / "ir.h5"
    ima = shared_data / "hst/wfc3/ir_ima/iccz11q4q_ima.fits.gz"
    refused = crstats("wfc3_ir", [ima], tmp_path / "refused.h5")
    assert refused.exit_code == 1 and "not a dark (TARGNAME=WASP-12)" in refused.output
    result = crstats("wfc3_ir", [ima], store, "-p", "darks_only=false")  # measured on request
    assert result.exit_code == 0, result.output
    (row,) = stored(store)
    print(f"iccz11q4q: n_cr {row['n_cr']} ({row['n_cut_small']} events of 1-2 px cut), "
          f"rate {row['rate']:.3f} CR cm-2 s-1")
    assert row["rootname"] == "iccz11q4q" and row["detector"] == "wfc3_ir"
    assert row["n_cr"] <= 2
    assert row["exptime"] == pytest.approx(0.833445)
    assert row["integration_time"] == pytest.approx(0.833445 + 1.0)  # issue 4: EXPTIME + 1 s
    assert row["area_cm2"] == pytest.approx(WFC3_IR.area_cm2 * 256**2 / WFC3_IR.npix)
    assert row["orbit_count"] == 0  # no SPT beside it: no track, only a warning


def test_wfc3_ir_ima_is_refused_by_another_ramp_detector(shared_data, tmp_path):
    ima = shared_data / "hst/wfc3/ir_ima/iccz11q4q_ima.fits.gz"
    store = tmp_path / "mismatch.h5"
    result = crstats("nicmos_nic2", [ima], store, "-p", "darks_only=false")
    assert result.exit_code == 1, result.output
    assert failures(result)[ima.name].startswith("is INSTRUME=WFC3")
    assert len(stored(store)) == 0


# --------------------------------------------------------------------------- WFPC2
WFPC2_CHIPS = {"wfpc2_pc": 1, "wfpc2_wf2": 2, "wfpc2_wf3": 3, "wfpc2_wf4": 4}


def _wfpc2_reason(name: str, chip: int) -> str:
    if name == "waivered.fits":
        return "is not a WFPC2 image in MEF, waiver-FITS or GEIS layout"
    if name == "HST_WFPC_II_bis.fits" and chip != 4:
        return f"holds chip 4 only, not chip {chip}"
    target = "?" if name == "test0.fits" else "NGC4151"
    return (f"not a dark (IMAGETYP=EXT, TARGNAME={target}): the cosmic-ray census uses dark "
            f"frames only")


@pytest.mark.parametrize("name", ["HST_WFPC_II.fits.gz", "HST_WFPC_II_bis.fits", "test0.fits",
                                  "waivered.fits"])
def test_wfpc2_files_give_a_reason_per_chip(shared_data, tmp_path, name):
    path = shared_data / "hst/wfpc2" / name
    for detector, chip in WFPC2_CHIPS.items():
        store = tmp_path / f"{detector}.h5"
        result = crstats(detector, [path], store)
        assert result.exit_code == 1, (detector, result.output)
        failed = failures(result)
        assert list(failed) == [name], detector
        assert failed[name].startswith(_wfpc2_reason(name, chip)), (detector, failed[name])
        assert len(stored(store)) == 0


# --------------------------------------------------------------------------- NICMOS
@pytest.mark.parametrize("name, detector, reason", [
    ("HST_NICMOS.fits.gz", "nicmos_nic2",
     ("has 1 SCI imset but a MULTIACCUM _ima holds one per read (NSAMP=10): this is a "
      "processed single-image product")),
    ("cos_N8XTZCAWQ.fits", "nicmos_nic3",
     ("has no SCI extension (not an HST imset file?): a NICMOS MULTIACCUM file "
      "(SAMP_SEQ=SPARS64, NSAMP=11) with the image in its primary array, i.e. a processed "
      "single-image product; cosmic rays are found between the reads of the _ima file")),
])
def test_nicmos_files_are_not_multiaccum_imas(shared_data, tmp_path, name, detector, reason):
    store = tmp_path / "nicmos.h5"
    result = crstats(detector, [shared_data / "hst/nicmos" / name], store)
    assert result.exit_code == 1, result.output
    failed = failures(result)
    assert list(failed) == [name]
    assert failed[name].startswith(reason), failed[name]
    assert len(stored(store)) == 0
