"""Plugin loading: entry points, broken and duplicate plugins, HSTCAL_PLUGINS, hook docs."""

import inspect
import json
import re
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from hstcal_core import hookspecs
from hstcal_core.cli import main
from hstcal_core.errors import DuplicateDetectorError, StageNotSupportedError, UnknownDetectorError
from hstcal_core.registry import build_registry

ROOT = Path(__file__).resolve().parents[1]


def _fake_distribution(site: Path, dist: str, ep_name: str, module: str, source: str | None):
    """A real installed distribution on a sys.path entry: dist-info + module."""
    info = site / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[hstcal.plugins]\n{ep_name} = {module}\n")
    if source is not None:
        (site / f"{module}.py").write_text(textwrap.dedent(source))


_CAM_PLUGIN = """
from hstcal_core import Amplifier, Detector, hookimpl
CAM = Detector(name="{det}", instrument="FAKE", detector="CAM", kind="ccd", shape=(8, 8),
               pixel_pitch_um=10.0, pixel_scale_arcsec=0.1, gain_keyword="CCDGAIN",
               amplifiers={{1: (Amplifier("A", 1.0, 3.0),)}}, readout_time_s=1.0)

@hookimpl
def register_detectors(register):
    register.detector(CAM, stages=("crreject",))
"""


MISSION = {
    "acs_wfc": ("hstcal-acs", 37.748), "acs_hrc": ("hstcal-acs", 4.624),
    "stis_ccd": ("hstcal-stis", 4.624), "stis_fuv_mama": ("hstcal-stis", None),
    "stis_nuv_mama": ("hstcal-stis", None), "wfc3_uvis": ("hstcal-wfc3", 37.804),
    "wfc3_ir": ("hstcal-wfc3", 3.331), "wfpc2_pc": ("hstcal-wfpc2", 1.44),
    "wfpc2_wf2": ("hstcal-wfpc2", 1.44), "wfpc2_wf3": ("hstcal-wfpc2", 1.44),
    "wfpc2_wf4": ("hstcal-wfpc2", 1.44), "nicmos_nic1": ("hstcal-nicmos", None),
    "nicmos_nic2": ("hstcal-nicmos", None), "nicmos_nic3": ("hstcal-nicmos", None),
    "cos_fuv": ("hstcal-cos", None), "cos_nuv": ("hstcal-cos", None),
}


def test_installed_plugins_register_the_mission(hstcal_registry):
    names = set(hstcal_registry.detectors)
    assert set(MISSION) <= names
    for name, (dist, area) in MISSION.items():
        entry = hstcal_registry.entry(name)
        assert entry.distribution == dist
        if area is not None:  # census areas (WFPC2 per chip: HSTcosmicrays' 5.76 is 4 chips)
            assert entry.detector.area_cm2 == pytest.approx(area, rel=1e-3)
            assert entry.detector.geometric_area_cm2 == pytest.approx(area, rel=1e-2)
    entry = hstcal_registry.entry("stis_ccd")
    assert entry.distribution == "hstcal-stis"
    assert {"basebias", "refbias", "weekbias", "basedark", "weekdark", "anneal"} <= set(entry.stages)


def test_broken_plugin_is_reported_and_skipped(tmp_path, monkeypatch):
    _fake_distribution(tmp_path, "hstcal-broken", "broken", "hstcal_broken_mod",
                       "raise ImportError('missing compiled extension _fastcr')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = build_registry()
    broken = {b.name: b for b in registry.broken}
    assert "broken" in broken
    assert broken["broken"].distribution == "hstcal-broken"
    assert "missing compiled extension" in broken["broken"].error
    assert "stis_ccd" in registry.detectors  # the others still load
    result = CliRunner().invoke(main, ["plugins"])
    assert result.exit_code == 0


def test_two_distributions_claiming_one_detector_is_an_error(tmp_path, monkeypatch):
    _fake_distribution(tmp_path, "hstcal-cam-one", "camone", "hstcal_cam_one",
                       _CAM_PLUGIN.format(det="dup_cam"))
    _fake_distribution(tmp_path, "hstcal-cam-two", "camtwo", "hstcal_cam_two",
                       _CAM_PLUGIN.format(det="dup_cam"))
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(DuplicateDetectorError) as info:
        build_registry()
    assert "hstcal-cam-one" in str(info.value) and "hstcal-cam-two" in str(info.value)
    assert "dup_cam" in str(info.value)


def test_hstcal_plugins_restricts_loading(tmp_path, monkeypatch):
    _fake_distribution(tmp_path, "hstcal-cam-three", "camthree", "hstcal_cam_three",
                       _CAM_PLUGIN.format(det="third_cam"))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("HSTCAL_PLUGINS", "camthree")
    registry = build_registry()
    assert set(registry.plugins) == {"core", "camthree"}
    assert set(registry.detectors) == {"third_cam"}
    with pytest.raises(UnknownDetectorError, match="third_cam"):
        registry.entry("stis_ccd")


def test_unsupported_stage_names_the_plugin(hstcal_registry):
    entry = hstcal_registry.entry("stis_fuv_mama")
    with pytest.raises(StageNotSupportedError, match="not supported by plugin hstcal-stis"):
        entry.require_stage("weekbias")


def test_every_hook_is_documented_with_its_exact_signature():
    """datasette-style: a hook missing from docs/plugins.md, or documented with a drifted
    signature, fails here."""
    doc = (ROOT / "docs" / "plugins.md").read_text()
    documented = dict(re.findall(r"^### (\w+)\(([^)]*)\)", doc, flags=re.M))
    specs = {name: fn for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
             if hasattr(fn, "hstcal_spec")}
    assert set(specs) == {"register_detectors", "query", "calibrate", "reject_crs", "label",
                          "measure", "build_reffile", "drizzle"}
    for name, fn in specs.items():
        assert name in documented, f"hook {name} is not documented in docs/plugins.md"
        params = ", ".join(inspect.signature(fn).parameters)
        assert documented[name] == params, f"docs/plugins.md documents {name}({documented[name]})"
        doc_string = inspect.getdoc(fn) or ""
        for p in inspect.signature(fn).parameters.values():
            assert p.default is inspect.Parameter.empty, f"{name}.{p.name} has a default"
            assert f":param {p.name}:" in doc_string, f"{name} does not document {p.name}"
        if fn.hstcal_spec.get("firstresult"):
            assert doc_string.endswith("Stops at the first non-None result; return None for "
                                       "detectors this plugin does not serve.")


def test_plugins_command_lists_every_detector_and_stage(hstcal_registry):
    result = CliRunner().invoke(main, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    listed = {d["name"]: set(d["stages"]) for p in report["plugins"] for d in p["detectors"]}
    for name, entry in hstcal_registry.detectors.items():
        assert listed[name] == set(entry.stages)
    versions = {p["distribution"]: p["version"] for p in report["plugins"]}
    assert versions["hstcal-stis"] == "0.1.0"


def test_stages_command_describes_every_stage():
    from hstcal_core.stages import STAGES

    result = CliRunner().invoke(main, ["stages"])
    assert result.exit_code == 0
    for name, st in STAGES.items():
        assert re.search(rf"^{name}\s+\S", result.output, flags=re.M)
        assert st.description
