"""Every instrument plugin answers the ``query`` hook and declares its inactive windows.

Goes through the real registry (installed entry points) and the typed hook façade, as a
campaign does: ``registry.hooks.query(detector=..., criteria={"purpose": ..., ...})``.
"""

import datetime as dt

import pytest

from hstcal_core import Amplifier, Detector
from hstcal_core.archive.base import QueryCriteria, criteria_for
from hstcal_core.errors import ConfigError, NoImplementationError
from hstcal_core.registry import build_registry

LAUNCH = "1990-04-24"
WFPC2_CHIPS = ("wfpc2_pc", "wfpc2_wf2", "wfpc2_wf3", "wfpc2_wf4")
NICMOS_CAMERAS = ("nicmos_nic1", "nicmos_nic2", "nicmos_nic3")


def _crdark(instrument_name, file_types):
    # HSTcosmicrays download.py: calibration darks 'DARK*' of 0.5-10000 s.
    return dict(instrument_name=instrument_name, intent="calibration", target_name=("DARK*",),
                exptime=(0.5, 10000.0), file_types=file_types, header={})


def _timetag(instrument_name, file_types):
    # hstlc: science TIME-TAG exposures of at least 1 s, event list + x1d.
    return dict(instrument_name=instrument_name, intent="science", target_name=(),
                exptime=(1.0, 1e5), file_types=file_types, header={"OBSMODE": "TIME-TAG"})


# {detector: {purpose: expected QueryCriteria fields}}: the tables of docs/plugins.md.
EXPECTED = {
    "stis_ccd": {
        # refstis pipeline.get_new_obs
        "bias": dict(instrument_name=("STIS/CCD",), intent="calibration", target_name=("BIAS",),
                     exptime=(-1.0, 100.0), file_types=("RAW",), header={"CCDAMP": "D"}),
        "dark": dict(instrument_name=("STIS/CCD",), intent="calibration", target_name=("DARK",),
                     exptime=(1000.0, 1200.0), file_types=("RAW",), header={"CCDAMP": "D"}),
        "crdark": _crdark(("STIS/CCD",), ("RAW", "SPT")),
    },
    "stis_fuv_mama": {"timetag": _timetag(("STIS/FUV-MAMA",), ("TAG", "X1D"))},
    "stis_nuv_mama": {"timetag": _timetag(("STIS/NUV-MAMA",), ("TAG", "X1D"))},
    "cos_fuv": {"timetag": _timetag(("COS/FUV",), ("CORRTAG_A", "X1D"))},
    "cos_nuv": {"timetag": _timetag(("COS/NUV",), ("CORRTAG", "X1D"))},
    "acs_wfc": {"crdark": _crdark(("ACS/WFC",), ("FLT", "SPT"))},
    "acs_hrc": {"crdark": _crdark(("ACS/HRC",), ("FLT", "SPT"))},
    "wfc3_uvis": {"crdark": _crdark(("WFC3/UVIS",), ("FLT", "SPT"))},
    "wfc3_ir": {"crdark": _crdark(("WFC3/IR",), ("IMA", "SPT"))},
    **{chip: {"crdark": _crdark(("WFPC2*",), ("C0M", "SHM"))} for chip in WFPC2_CHIPS},
    **{cam: {"crdark": _crdark((f"NICMOS/NIC{cam[-1]}",), ("IMA", "SPT"))}
       for cam in NICMOS_CAMERAS},
}

CASES = [(det, purpose) for det, table in EXPECTED.items() for purpose in table]

_STIS = ((LAUNCH, "1997-02-14"), ("2004-08-03", "2009-05-17"))
EXPECTED_INACTIVE = {
    "acs_wfc": ((LAUNCH, "2002-03-07"), ("2007-01-27", "2009-05-16")),
    "acs_hrc": ((LAUNCH, "2002-03-07"), ("2007-01-27", None)),
    "stis_ccd": _STIS, "stis_fuv_mama": _STIS, "stis_nuv_mama": _STIS,
    "cos_fuv": ((LAUNCH, "2009-05-16"),), "cos_nuv": ((LAUNCH, "2009-05-16"),),
    "wfc3_uvis": ((LAUNCH, "2009-05-14"),), "wfc3_ir": ((LAUNCH, "2009-05-14"),),
    **{chip: ((LAUNCH, "1993-12-07"), ("2009-05-14", None)) for chip in WFPC2_CHIPS},
    **{cam: ((LAUNCH, "1997-02-14"), ("1999-01-12", "2002-03-08"),
             ("2008-09-10", "2009-09-15"), ("2009-10-23", None)) for cam in NICMOS_CAMERAS},
}


@pytest.fixture(scope="module")
def registry():
    return build_registry()


def _ask(registry, detector, **criteria):
    return registry.hooks.query(detector=registry.detector(detector), criteria=criteria)


@pytest.mark.parametrize("detector, purpose", CASES)
def test_plugin_answers_its_table(registry, detector, purpose):
    answer = _ask(registry, detector, purpose=purpose)
    assert isinstance(answer, QueryCriteria)
    assert answer.detector == detector and answer.purpose == purpose
    want = EXPECTED[detector][purpose]
    got = {key: getattr(answer, key) for key in want}
    got["header"] = dict(answer.header)
    assert got == want
    assert answer.proposals == () and answer.time is None and answer.project == "HST"


def test_mission_detectors_registered_and_foreign_ones_unanswered(hstcal_registry):
    assert set(EXPECTED) <= set(hstcal_registry.detectors)
    foreign = Detector(name="foreign_cam", instrument="FOREIGN", detector="CAM", kind="ccd",
                       shape=(8, 8), pixel_pitch_um=10.0, pixel_scale_arcsec=0.1,
                       gain_keyword="CCDGAIN", amplifiers={1: (Amplifier("A", 1.0, 3.0),)},
                       readout_time_s=1.0)
    # Every plugin returns None for a detector it does not serve, so nobody answers.
    with pytest.raises(NoImplementationError, match="foreign_cam"):
        hstcal_registry.hooks.query(detector=foreign, criteria={"purpose": "crdark"})


def test_overrides_replace_the_defaults(registry):
    answer = _ask(registry, "stis_ccd", purpose="dark", proposals=[10017, "11845"],
                  exptime=[1, 2000], target_name=["DARK*"], file_types=["raw", "spt"])
    assert answer.proposals == ("10017", "11845")
    assert answer.exptime == (1.0, 2000.0)
    assert answer.target_name == ("DARK*",)
    assert answer.file_types == ("RAW", "SPT")
    assert dict(answer.header) == {"CCDAMP": "D"}  # not overridable: kept
    assert answer.instrument_name == ("STIS/CCD",)


def test_absent_or_none_overrides_keep_the_defaults(registry):
    answer = _ask(registry, "cos_fuv", purpose="timetag", proposals=None, exptime=None,
                  target_name=None, file_types=None)
    assert answer == _ask(registry, "cos_fuv", purpose="timetag")
    single = _ask(registry, "acs_wfc", purpose="crdark", proposals="10721", target_name="DARK")
    assert single.proposals == ("10721",) and single.target_name == ("DARK",)


def test_answers_do_not_share_the_plugin_table(registry):
    first = _ask(registry, "stis_ccd", purpose="bias")
    first.header["CCDAMP"] = "A"
    assert dict(_ask(registry, "stis_ccd", purpose="bias").header) == {"CCDAMP": "D"}


@pytest.mark.parametrize("detector, purpose, supported", [
    ("wfpc2_pc", "timetag", "crdark"),
    ("stis_ccd", "timetag", "bias, crdark, dark"),
    ("stis_fuv_mama", "dark", "timetag"),
    ("cos_nuv", "crdark", "timetag"),
    ("nicmos_nic2", "bias", "crdark"),
])
def test_unsupported_purpose_names_detector_purpose_and_supported(registry, detector, purpose,
                                                                  supported):
    with pytest.raises(ConfigError) as info:
        _ask(registry, detector, purpose=purpose)
    message = str(info.value)
    assert detector in message and f"'{purpose}'" in message
    assert f"supported purposes: {supported}" in message


@pytest.mark.parametrize("criteria, words", [
    ({}, ["'purpose'", "acs_hrc", "crdark"]),
    ({"purpose": ["crdark"]}, ["'purpose'"]),
    ({"purpose": "crdark", "exp_time": [1, 2]}, ["exp_time", "acs_hrc", "exptime"]),
    ({"purpose": "crdark", "exptime": [100]}, ["exptime", "[lo, hi]"]),
    ({"purpose": "crdark", "exptime": [100, 10]}, ["exptime", "lo > hi"]),
    ({"purpose": "crdark", "exptime": ["a", "b"]}, ["exptime"]),
    ({"purpose": "crdark", "file_types": []}, ["file_types", "primary"]),
    ({"purpose": "crdark", "proposals": 3.5}, ["proposals"]),
])
def test_malformed_criteria_are_config_errors(registry, criteria, words):
    with pytest.raises(ConfigError) as info:
        registry.hooks.query(detector=registry.detector("acs_hrc"), criteria=criteria)
    for word in words:
        assert word in str(info.value)


def test_criteria_for_takes_a_detector_and_a_table():
    table = {"dark": dict(instrument_name=("X/Y",), file_types=("RAW",))}
    cam = Detector(name="x_y", instrument="X", detector="Y", kind="ccd", shape=(4, 4),
                   pixel_pitch_um=10.0, pixel_scale_arcsec=0.1, gain_keyword="CCDGAIN",
                   amplifiers={1: (Amplifier("A", 1.0, 3.0),)}, readout_time_s=1.0)
    answer = criteria_for(cam, {"purpose": "dark", "exptime": (5, 6)}, table)
    assert answer == QueryCriteria(detector="x_y", purpose="dark", instrument_name=("X/Y",),
                                   file_types=("RAW",), exptime=(5.0, 6.0))
    assert answer.intent == "calibration"  # QueryCriteria's default
    with pytest.raises(ConfigError, match=r"detector x_y has no archive purpose 'bias' "
                                          r"\(supported purposes: dark\)"):
        criteria_for(cam, {"purpose": "bias"}, table)


def test_inactive_windows_are_sorted_and_disjoint_for_every_detector(hstcal_registry):
    for name, entry in hstcal_registry.detectors.items():
        windows = entry.detector.inactive
        assert isinstance(windows, tuple), name
        last_back = None
        for i, (first, back) in enumerate(windows):
            start = dt.date.fromisoformat(first)
            assert start >= dt.date.fromisoformat(LAUNCH), (name, first)
            if last_back is not None:
                assert start >= last_back, f"{name}: window {i} starts before the last ends"
            if back is None:
                assert i == len(windows) - 1, f"{name}: only the last window may be open"
                continue
            last_back = dt.date.fromisoformat(back)
            assert last_back > start, (name, first, back)


@pytest.mark.parametrize("detector", sorted(EXPECTED_INACTIVE))
def test_inactive_windows_as_documented(registry, detector):
    assert registry.detector(detector).inactive == EXPECTED_INACTIVE[detector]
