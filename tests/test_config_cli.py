"""Parameter precedence (CLI > YAML > plugin defaults), --save-config round trip, API reach."""

import yaml
import pytest
from astropy.io import fits
from click.testing import CliRunner

from hstcal_core import ConfigError, run_stage
from hstcal_core.cli import main
from hstcal_core.options import Param, as_float_list, load_config, resolve_options


def test_precedence_and_origins():
    params = [Param("crsigmas", as_float_list, (5.0,), "x"), Param("crradius", float, 1.5, "y"),
              Param("crthresh", float, 0.75, "z")]
    opts = resolve_options(params, plugin_defaults={"crradius": 2.0},
                           config={"crradius": 2.5, "crthresh": 0.5}, cli={"crthresh": 0.9})
    assert opts.crsigmas == (5.0,) and opts.source("crsigmas") == "default"
    assert opts.crradius == 2.5 and opts.source("crradius") == "config"
    assert opts.crthresh == 0.9 and opts.source("crthresh") == "cli"


def test_unknown_or_invalid_keys_are_named(tmp_path):
    params = [Param("crradius", float, 1.5, "y")]
    with pytest.raises(ConfigError, match=r"cfg.yml: unknown parameter 'crradiuss'; valid parameters: \['crradius'\]"):
        resolve_options(params, config={"crradiuss": 1}, config_origin="cfg.yml")
    with pytest.raises(ConfigError, match="parameter 'crradius'"):
        resolve_options(params, cli={"crradius": "wide"})
    bad = tmp_path / "bad.yml"
    bad.write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match="bad.yml: not valid YAML"):
        load_config(bad)
    listy = tmp_path / "list.yml"
    listy.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(listy)


def test_save_config_round_trip_through_the_cli(tmp_path, stis_raw):
    a = stis_raw("r1_raw.fits", seed=1)
    b = stis_raw("r2_raw.fits", seed=2)
    saved = tmp_path / "params.yml"
    out1 = tmp_path / "one_bia.fits"
    runner = CliRunner()
    result = runner.invoke(main, ["run", "--instrument", "stis_ccd", "--stage", "refbias", str(a),
                                  str(b), "--out", str(out1), "--save-config", str(saved),
                                  "-p", "crsigmas=6,5", "-p", "refbias_hot_sigma=7"])
    assert result.exit_code == 0, result.output
    values = yaml.safe_load(saved.read_text())
    assert values["crsigmas"] == [6.0, 5.0] and values["refbias_hot_sigma"] == 7.0
    assert values["bias_filter"] == [3, 15]  # plugin default recorded too
    out2 = tmp_path / "two_bia.fits"
    result = runner.invoke(main, ["run", "--instrument", "stis_ccd", "--stage", "refbias", str(a),
                                  str(b), "--out", str(out2), "--config", str(saved)])
    assert result.exit_code == 0, result.output
    with fits.open(out1) as h1, fits.open(out2) as h2:
        assert (h1["SCI"].data == h2["SCI"].data).all()
        assert (h1["DQ"].data == h2["DQ"].data).all()
        hist = "\n".join(h2[0].header["HISTORY"])
    assert "crsigmas = [6.0, 5.0]" in hist


def test_list_params_and_api_reach(tmp_path, stis_raw):
    result = CliRunner().invoke(main, ["run", "--instrument", "stis_ccd", "--stage", "weekdark",
                                       "--list-params"])
    assert result.exit_code == 0
    for name in ("basedark", "bias", "crrejtab", "dark_hot_floor", "temperature_scaling"):
        assert name in result.output
    a = stis_raw("p1_raw.fits", seed=3)
    b = stis_raw("p2_raw.fits", seed=4)
    res = run_stage("refbias", detector="stis_ccd", inputs=[a, b], out=tmp_path / "api_bia.fits",
                    config={"crsigmas": "5,4"})
    assert res.products == [tmp_path / "api_bia.fits"] and res.ok
