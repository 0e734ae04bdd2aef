"""The anneal stage as a plan of tasks: keys and dependency edges from headers alone, the
same products and manifest whatever valid order (and process) the tasks run in, and the
recipe's fallbacks when a week's superbias fails."""

import json
import pickle
import shutil

import numpy as np
import pytest
from astropy.io import fits

import hstcal_core.fitsio
import hstcal_core.reffiles.anneal_set as anneal_set
from hstcal_core import run_stage
from hstcal_core.options import resolve_options
from hstcal_core.reffiles.anneal import read_anneal_table
from hstcal_core.reffiles.anneal_set import PLAN_KEY, finish_anneal, plan_anneal
from hstcal_core.registry import build_registry, get_registry
from hstcal_core.stages import STAGES, StageContext, stage, stage_params
from hstcal_core.tasks import TaskOutput, call_task, order_tasks
from hstcal_stis.simulate import simulate_anneal_month

# Week biases are weekbiases at the plugin's threshold (98 imsets); with 4 imsets a week
# they become refbiases and the basebias turns into a fallback for the darks only.
REFBIAS_WEEKS = {"bias_thresholds": {"1,1,1": 4, "4,1,1": 1}}
DATE_KEYS = ("CHECKSUM", "DATASUM", "DATE", "IRAF-TLM")


@pytest.fixture(scope="module")
def month(tmp_path_factory):
    raw = tmp_path_factory.mktemp("anneal_plan") / "raw"
    # gain 1 1x1: 2 two-imset biases and 2 darks a week; gain 4: one bias a bi-week
    truth = simulate_anneal_month(raw, seed=21, bias_files_per_week=2, binned_bias_files=0,
                                  gain4_files_per_biweek=1, darks_per_week=2)
    period = read_anneal_table(truth.anneal_table)[truth.anneal_index]
    return dict(raw=raw, table=truth.anneal_table, name=period.name)


def _context(raw, table, out, registry=None, **params):
    """The context ``run_stage("anneal", ...)`` builds (plugin defaults < ``params``)."""
    registry = registry or get_registry()
    entry = registry.entry("stis_ccd")
    options = resolve_options(stage_params(stage("anneal"), entry),
                              plugin_defaults=entry.defaults.get("anneal", {}),
                              cli={"anneal_table": str(table), **params})
    return StageContext(registry=registry, entry=entry, stage=stage("anneal"), inputs=[raw],
                        options=options, out=out)


def _by_week(raw, kind):
    """Raw files of one kind (gain 1), grouped in fours by time: two per week."""
    found = sorted((fits.getval(p, "TEXPSTRT"), p) for p in raw.glob("*_raw.fits")
                   if fits.getval(p, "TARGNAME") == kind and fits.getval(p, "CCDGAIN") == 1)
    paths = [p for _, p in found]
    return [paths[i:i + 2] for i in range(0, len(paths), 2)]


def _layers(tasks):
    """Topological layers: a task's layer is one more than its deepest dependency's."""
    depth = {}
    for task in order_tasks(tasks):
        depth[task.key] = 1 + max((depth[d] for d in task.deps), default=-1)
    layers = [[] for _ in range(max(depth.values()) + 1)]
    for task in tasks:
        layers[depth[task.key]].append(task)
    return layers


def _assert_same_products(dir_a, dir_b):
    names = sorted(p.name for p in dir_a.glob("*.fits"))
    assert names and names == sorted(p.name for p in dir_b.glob("*.fits"))
    for name in names:
        with fits.open(dir_a / name) as a, fits.open(dir_b / name) as b:
            assert len(a) == len(b)
            for hdu_a, hdu_b in zip(a, b):
                if hdu_a.data is None:
                    assert hdu_b.data is None
                else:
                    assert hdu_a.data.dtype == hdu_b.data.dtype
                    np.testing.assert_array_equal(hdu_a.data, hdu_b.data, err_msg=name)
                cards_a = [(c.keyword, c.value) for c in hdu_a.header.cards
                           if c.keyword not in DATE_KEYS]
                cards_b = [(c.keyword, c.value) for c in hdu_b.header.cards
                           if c.keyword not in DATE_KEYS]
                assert cards_a == cards_b, name
    assert (dir_a / "manifest.json").read_bytes() == (dir_b / "manifest.json").read_bytes()


# --------------------------------------------------------------------------- planning
def test_plan_keys_and_dependency_edges(month, tmp_path):
    m = month["name"]
    tasks = plan_anneal(_context(month["raw"], month["table"], tmp_path))
    deps = {t.key: set(t.deps) for t in tasks}
    base = f"{m}/basebias_g1_1x1_bia.fits"
    weekbias = [f"{m}/weekbias_g1_1x1_wk0{i}_bia.fits" for i in range(1, 5)]
    basedark = f"{m}/basedark_g1_1x1_drk.fits"
    expected = {
        PLAN_KEY: set(),
        base: set(),
        **{key: {base} for key in weekbias},
        f"{m}/refbias_g4_1x1_biwk01_bia.fits": set(),
        f"{m}/refbias_g4_1x1_biwk02_bia.fits": set(),
        basedark: {*weekbias, base},
        **{f"{m}/weekdark_g1_1x1_wk0{i}_drk.fits": {basedark, weekbias[i - 1], base}
           for i in range(1, 5)},
    }
    assert deps == expected
    # the order products were always built in, the plan's report first
    assert [t.key for t in tasks] == list(expected)
    assert {t.key for t in order_tasks(tasks)} == set(expected)
    for task in tasks:  # every task travels to a worker process as it is
        assert "registry" not in task.kwargs
        clone = pickle.loads(pickle.dumps(task))
        assert (clone.key, clone.fn, clone.deps) == (task.key, task.fn, task.deps)
    spec = {t.key: t.kwargs["spec"] for t in tasks[1:]}
    assert [f.path for f in spec[basedark].frames] == sorted(
        p for week in _by_week(month["raw"], "DARK") for p in week)
    assert spec[weekbias[1]].references == (("basebias", base),)
    assert spec[f"{m}/weekdark_g1_1x1_wk03_drk.fits"].bias[0].keys == (weekbias[2], base)


def test_basebias_is_a_fallback_where_every_week_has_a_refbias(month, tmp_path):
    m = month["name"]
    tasks = plan_anneal(_context(month["raw"], month["table"], tmp_path, **REFBIAS_WEEKS))
    by_key = {t.key: t for t in tasks}
    refbias = [f"{m}/refbias_g1_1x1_wk0{i}_bia.fits" for i in range(1, 5)]
    base = by_key[f"{m}/basebias_g1_1x1_bia.fits"]
    assert set(base.deps) == set(refbias)
    assert set(base.kwargs["spec"].unless_built) == set(refbias)
    assert set(by_key[f"{m}/basedark_g1_1x1_drk.fits"].deps) == {*refbias, base.key}
    # when every refbias is built the fallback is not: no product, no manifest record
    built = {key: TaskOutput(products=[tmp_path / key]) for key in refbias}
    assert call_task(base, built) == TaskOutput()


def test_planning_reads_headers_only(month, tmp_path, monkeypatch):
    def no_pixels(*args, **kwargs):
        raise AssertionError("planning read pixel data")

    monkeypatch.setattr(hstcal_core.fitsio, "read_exposure", no_pixels)
    monkeypatch.setattr(anneal_set, "read_exposure", no_pixels)
    tasks = plan_anneal(_context(month["raw"], month["table"], tmp_path / "out"))
    assert len(tasks) == 13
    assert not (tmp_path / "out").exists()  # nor writes anything


def test_inputs_in_no_month_are_reported_by_the_plan(month, tmp_path):
    raw = tmp_path / "raw"
    shutil.copytree(month["raw"], raw)
    (raw / "junk_raw.fits").write_bytes(b"not a FITS file")
    flat = raw / "flat00001_raw.fits"
    shutil.copy(next(raw.glob("o*_raw.fits")), flat)
    fits.setval(flat, "TARGNAME", value="FLAT")
    out = tmp_path / "out"
    ctx = _context(raw, month["table"], out)
    tasks = plan_anneal(ctx)
    # no product task ran: each is reported, the plan's own reports are kept
    result = finish_anneal(ctx, {PLAN_KEY: call_task(tasks[0])})
    assert [w for w, _ in result.failures[:1]] == [str(raw / "junk_raw.fits")]
    assert {w for w, why in result.failures[1:]} == {t.key for t in tasks[1:]}
    assert all(why == "task did not run" for _, why in result.failures[1:])
    assert result.skipped == [(str(flat), "frame type 'FLAT' is neither BIAS nor DARK")]
    manifest = json.loads((out / month["name"] / "manifest.json").read_text())
    assert manifest["products"] == [] and manifest["period"]["name"] == month["name"]


def test_stage_declares_its_plan():
    anneal = STAGES["anneal"]
    assert anneal.purposes == ("bias", "dark")
    assert anneal.plan is not None and anneal.finish is not None


# --------------------------------------------------------------------------- running
def test_any_valid_order_in_any_process_gives_the_same_set(month, tmp_path):
    serial = run_stage("anneal", detector="stis_ccd", inputs=[month["raw"]],
                       out=tmp_path / "serial", anneal_table=month["table"])
    assert serial.ok and len(serial.products) == 12
    ctx = _context(month["raw"], month["table"], tmp_path / "tasks")
    tasks = plan_anneal(ctx)
    outputs = {}
    for layer in _layers(tasks):
        for task in reversed(layer):  # each layer backwards, each task as a worker gets it
            task = pickle.loads(pickle.dumps(task))
            output = call_task(task, outputs)
            outputs[task.key] = pickle.loads(pickle.dumps(output))
    order = [t.key for t in tasks]
    assert list(outputs) != order  # the test did run them out of plan order
    result = finish_anneal(ctx, dict(reversed(list(outputs.items()))))
    _assert_same_products(tmp_path / "serial" / month["name"], tmp_path / "tasks" / month["name"])
    assert [p.name for p in result.products] == [p.name for p in serial.products]
    assert (result.failures, result.skipped, result.details) == (
        serial.failures, serial.skipped, serial.details)
    built = outputs[f"{month['name']}/weekdark_g1_1x1_wk02_drk.fits"]
    assert built.records[0]["status"] == "built" and len(built.processed) == 2
    # a rerun keeps every product, task by task
    again = call_task(tasks[1])
    assert again.records[0]["status"] == "kept" and again.products == [
        tmp_path / "tasks" / month["name"] / "basebias_g1_1x1_bia.fits"]


def _nan_pixel(path):
    """Valid headers, unusable pixels: the file passes planning and fails when read."""
    with fits.open(path) as hdul:
        hdul = fits.HDUList([hdu.copy() for hdu in hdul])
    sci = hdul["SCI", 1].data.astype(np.float32)
    sci[5, 5] = np.nan
    hdul["SCI", 1].data = sci
    hdul.writeto(path, overwrite=True)


@pytest.mark.parametrize("params, week_bias", [({}, "weekbias"), (REFBIAS_WEEKS, "refbias")])
def test_darks_fall_back_to_the_basebias_when_their_weeks_bias_fails(month, tmp_path, params,
                                                                     week_bias):
    raw = tmp_path / "raw"
    shutil.copytree(month["raw"], raw)
    bad = _by_week(raw, "BIAS")[1]
    for path in bad:
        _nan_pixel(path)
    registry = build_registry()
    calibrated = []
    calibrate = registry.hooks.calibrate

    def spy(*, detector, exposure, options):
        calibrated.append((exposure.path.name, options.get("bias")))
        return calibrate(detector=detector, exposure=exposure, options=options)

    registry.hooks.calibrate = spy  # the in-process run must use the context's registry
    out = tmp_path / "out"
    result = run_stage("anneal", detector="stis_ccd", inputs=[raw], out=out,
                       anneal_table=month["table"], registry=registry, **params)
    m = month["name"]
    month_dir = out / m
    wk2_bias = f"{week_bias}_g1_1x1_wk02_bia.fits"
    assert (f"{m}/{wk2_bias}", "no usable input frames") in result.failures
    for path in bad:
        assert (str(path), "SCI,1 contains 1 NaN/inf pixels") in result.failures
    names = {p.name for p in month_dir.glob("*.fits")}
    assert wk2_bias not in names
    assert {"basebias_g1_1x1_bia.fits", "basedark_g1_1x1_drk.fits",
            "weekdark_g1_1x1_wk02_drk.fits"} <= names
    base = str(month_dir / "basebias_g1_1x1_bia.fits")
    dark_bias = {name: bias for name, bias in calibrated if bias is not None}
    for week, darks in enumerate(_by_week(raw, "DARK"), start=1):
        own = str(month_dir / f"{week_bias}_g1_1x1_wk0{week}_bia.fits")
        for dark in darks:
            assert dark_bias[dark.name] == (base if week == 2 else own)
    manifest = json.loads((month_dir / "manifest.json").read_text())
    status = {r["file"]: r["status"] for r in manifest["products"]}
    assert status.pop(wk2_bias) == "failed" and set(status.values()) == {"built"}
    assert list(status)[-5:] == ["basedark_g1_1x1_drk.fits",
                                 *[f"weekdark_g1_1x1_wk0{i}_drk.fits" for i in range(1, 5)]]
