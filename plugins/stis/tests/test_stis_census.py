"""The ``crstats`` stage on STIS/CCD darks against the simulator's truth, through the API,
the CLI and the HDF5 store, and on the real CR-split raws of ../shared/data."""

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from click.testing import CliRunner

from hstcal_core import run_stage
from hstcal_core.cli import main
from hstcal_stis.simulate import simulate_stis_ccd

N_DARKS = 4
# a 'perfect detector' sees truth pixels above the last rejection sigma (crsigmas 6,5,4)
PERFECT_SIGMA = 4



def write_spt(raw: Path, start_mjd: float) -> Path:
    from hstcal_core.algorithms.orbit import REFERENCE_ELEMENTS, elements_at_epoch, orbit_keywords

    root = raw.name.split("_")[0]
    hdu = fits.PrimaryHDU()
    hdu.header.update(INSTRUME="STIS", ROOTNAME=root, FILETYPE="SPT")
    for key, value in orbit_keywords(elements_at_epoch(REFERENCE_ELEMENTS, start_mjd)).items():
        hdu.header[key] = value
    path = raw.with_name(f"{root}_spt.fits")
    hdu.writeto(path)
    return path


@pytest.fixture(scope="module")
def darks(tmp_path_factory):
    out = tmp_path_factory.mktemp("stis_darks")
    truth = simulate_stis_ccd(out, kind="dark", count=N_DARKS, seed=8, exptime=1100.0,
                              start_times_mjd=[55600.1 + 0.08 * i for i in range(N_DARKS)])
    for f, t0 in zip(truth.files, truth.expstart_mjd[:, 0]):
        write_spt(Path(f), float(t0))
    store = out / "census.h5"
    result = run_stage("crstats", detector="stis_ccd", inputs=truth.files, store=store)
    return dict(truth=truth, store=store, result=result)


def test_every_dark_is_recorded_with_its_orbit(darks):
    from hstcal_core.census.store import read_exposures

    assert darks["result"].ok, darks["result"].failures
    table = read_exposures(darks["store"])
    assert sorted(table["rootname"]) == sorted(r.lower() for r in darks["truth"].rootnames)
    for row in table:
        assert row["integration_time"] == pytest.approx(1100.0 + 15.0)
        assert row["rate"] == pytest.approx(row["n_cr"] / row["integration_time"]
                                            / row["area_cm2"])


def _detected_masks(store, truth, shape):
    from hstcal_core.census.store import read_exposures, read_pixels

    masks, objects = {}, {}
    for row in read_exposures(store):
        offsets, index = read_pixels(store, int(row["exposure_id"]))
        flat = np.zeros(shape[0] * shape[1], bool)
        flat[index] = True
        masks[row["rootname"]] = flat.reshape(shape)
        objects[row["rootname"]] = (offsets, index)
    return masks, objects


def test_completeness_false_detections_energy_and_rate_against_truth(darks):
    from hstcal_core.census.store import read_crs, read_exposures

    truth = darks["truth"]
    shape = (truth.trim_rows[1] - truth.trim_rows[0], truth.trim_cols[1] - truth.trim_cols[0])
    masks, objects = _detected_masks(darks["store"], truth, shape)
    noise_dn = np.sqrt(truth.read_noise_dn ** 2 + 0.03 * 1100.0 / truth.atodgain)
    threshold = 5 * noise_dn
    crs = read_crs(darks["store"])
    found = total = 0
    ratios, n_false, n_objects = [], 0, 0
    for i, root in enumerate(r.lower() for r in truth.rootnames):
        table = truth.cr_table(i, 1, threshold_dn=threshold)
        above = truth.cr_charge_dn >= threshold
        truth_id = np.full(shape, -1, np.int64)
        mine = truth.cr_file[truth.cr_id] == i
        truth_id[truth.cr_y[mine], truth.cr_x[mine]] = truth.cr_id[mine]
        for cr in table["cr_id"][table["n_pixels"] >= 3]:
            pix = (truth.cr_id == cr) & above
            total += 1
            found += masks[root][truth.cr_y[pix], truth.cr_x[pix]].mean() >= 0.5
        # each detected object: a false detection when it touches no truth CR pixel
        offsets, index = objects[root]
        energies = np.asarray(crs["energy_e"][crs["rootname"] == root])
        totals = dict(zip(table["cr_id"], table["total_dn"] * truth.atodgain))
        for j in range(len(offsets) - 1):
            ids = truth_id.ravel()[index[offsets[j]:offsets[j + 1]]]
            ids = np.unique(ids[ids >= 0])
            n_objects += 1
            if ids.size == 0:
                n_false += 1
            elif ids.size == 1 and totals.get(int(ids[0]), 0) > 500:
                ratios.append(energies[j] / totals[int(ids[0])])
    completeness = found / total
    false_fraction = n_false / n_objects
    energy = float(np.median(ratios))
    print(f"completeness {completeness:.4f} of {total}; false {false_fraction:.4f} of "
          f"{n_objects}; median energy ratio {energy:.4f} over {len(ratios)} CRs")
    assert total > 500
    assert completeness >= 0.98
    assert false_fraction <= 0.01
    assert energy == pytest.approx(1.0, abs=0.02)
    # the incident rate: the objects a perfect detector would count (8-connected groups of
    # >= 3 truth pixels above 5 sigma, so touching CRs count once, as they must), over the
    # same integration time (EXPTIME + 15 s readout) and area, against the record
    from hstcal_core.algorithms.label import label_crs

    exposures = read_exposures(darks["store"])
    for i, row in enumerate(sorted(exposures, key=lambda r: r["start_mjd"])):
        pix = (truth.cr_file[truth.cr_id] == i) & (truth.cr_charge_dn >= PERFECT_SIGMA * noise_dn)
        perfect = np.zeros(shape, bool)
        perfect[truth.cr_y[pix], truth.cr_x[pix]] = True
        n_truth = label_crs(perfect, min_size=3).n
        truth_rate = n_truth / row["integration_time"] / row["area_cm2"]
        print(f"{row['rootname']}: truth rate {truth_rate:.4f}, recorded {row['rate']:.4f}")
        assert row["rate"] == pytest.approx(truth_rate, rel=0.02)


def test_the_cli_appends_to_a_store_and_a_rerun_of_the_same_inputs_adds_nothing(darks,
                                                                              tmp_path):
    from hstcal_core.census.store import read_exposures

    store = tmp_path / "c.h5"
    args = ["run", "--instrument", "stis_ccd", "--stage", "crstats",
            *map(str, darks["truth"].files[:2]), "--store", str(store)]
    assert CliRunner().invoke(main, args).exit_code == 0
    assert CliRunner().invoke(main, args).exit_code == 0
    assert len(read_exposures(store)) == 2


def test_real_cr_split_raws(shared_data, tmp_path):
    from hstcal_core.census.store import read_exposures

    raws = sorted((shared_data / "hst" / "stis" / "ccd_crsplit").glob("*_raw.fits.gz"))
    assert raws
    # science CR-splits (NGC 1068), not darks: measured on request
    refused = run_stage("crstats", detector="stis_ccd", inputs=raws, store=tmp_path / "n.h5")
    assert len(refused.failures) == len(raws)
    assert all("not a dark (TARGNAME=NGC1068" in why for _, why in refused.failures)
    result = run_stage("crstats", detector="stis_ccd", inputs=raws, store=tmp_path / "r.h5",
                       darks_only=False)
    assert result.ok, result.failures
    table = read_exposures(tmp_path / "r.h5")
    assert len(table) == len(raws)
    print({r["rootname"]: (int(r["n_cr"]), float(r["rate"])) for r in table})
    assert all(r["n_cr"] > 10 for r in table)
    # SPT files sit beside the raws: HST's track is recorded, at LEO altitude
    assert all(len(r) for r in [table["orbit_count"]])
