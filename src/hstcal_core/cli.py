"""Command line: ``hstcal plugins|stages|simulate|run|archive|campaign|census``.

Errors hstcal raises on purpose (bad input, bad configuration, unsupported stage)
are printed as one line naming the file or key, with exit status 2; a stage that
completed but recorded failed inputs exits with status 1.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import click
import yaml

from .cli_group import HstcalGroup
from .registry import get_registry
from .stages import STAGES, run_stage, stage, stage_params

log = logging.getLogger("hstcal_core.cli")


def _setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING if quiet else (logging.DEBUG if verbose > 1 else logging.INFO)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)


def _parse_pairs(pairs: tuple[str, ...]) -> dict[str, Any]:
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--param")
        key, value = pair.split("=", 1)
        out[key.strip().replace("-", "_")] = yaml.safe_load(value) if value else None
    return out


@click.group(cls=HstcalGroup)
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors.")
@click.version_option(package_name="hstcal-core")
def main(verbose: int, quiet: bool) -> None:
    """hstcal: HST calibration pipelines on one plugin framework."""
    _setup_logging(verbose, quiet)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def plugins(as_json: bool) -> None:
    """List plugins, their distributions, detectors and each detector's stages."""
    registry = get_registry()
    report = {
        "plugins": [
            {"name": info.name, "distribution": info.distribution, "version": info.version,
             "module": info.module,
             "detectors": [
                 {**registry.entry(d).detector.summary(),
                  "stages": sorted(registry.entry(d).stages),
                  "simulate": registry.entry(d).simulator is not None}
                 for d in sorted(info.detectors)
             ]}
            for info in sorted(registry.plugins.values(), key=lambda i: i.name)
        ],
        "broken": [{"name": b.name, "distribution": b.distribution, "error": b.error}
                   for b in registry.broken],
    }
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    for plugin in report["plugins"]:
        click.echo(f"{plugin['name']}  ({plugin['distribution']} {plugin['version']})")
        for det in plugin["detectors"]:
            stages = ", ".join(det["stages"]) or "(no stages yet)"
            where = f"{det['instrument']}/{det['detector']}"
            click.echo(f"  {det['name']:<15} {where:<15} stages: {stages}")
    for broken in report["broken"]:
        click.echo(f"BROKEN {broken['name']} ({broken['distribution']}): {broken['error']}")


@main.command()
def stages() -> None:
    """List every stage with a one-line description."""
    for name, st in sorted(STAGES.items()):
        click.echo(f"{name:<10} {st.description}")


@main.command()
@click.option("--instrument", "detector", required=True, help="Detector, e.g. stis_ccd.")
@click.option("--kind", default="bias", show_default=True, help="What to simulate (bias, dark, month).")
@click.option("--count", default=4, show_default=True, type=int, help="Number of files.")
@click.option("--seed", default=0, show_default=True, type=int, help="Random seed.")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="Output directory.")
@click.option("--gain", default=None, type=int, help="Gain setting (e.g. 1 or 4).")
@click.option("--binning", default=None, help="Binning, e.g. 1x1, 1x2, 2x1, 2x2.")
@click.option("--start", "start_mjd", default=None, type=float, help="Start MJD of the series.")
@click.option("-p", "--param", "pairs", multiple=True, metavar="KEY=VALUE",
              help="Further simulator arguments.")
def simulate(detector, kind, count, seed, out, gain, binning, start_mjd, pairs) -> None:
    """Write synthetic raw files with known truth (truth.json beside them)."""
    from .simulate import simulate_detector

    kwargs = {"kind": kind, "count": count, "seed": seed}
    for key, value in (("gain", gain), ("binning", binning), ("start_mjd", start_mjd)):
        if value is not None:
            kwargs[key] = value
    kwargs.update(_parse_pairs(pairs))
    truth = simulate_detector(detector, out, **kwargs)
    truths = truth if isinstance(truth, list) else [truth]
    files = [f for t in truths for f in (t.get("files", []) if isinstance(t, dict)
                                         else getattr(t, "files", []))]
    click.echo(f"wrote {len(files)} file(s) to {out}")


@main.command(context_settings={"ignore_unknown_options": False})
@click.option("--instrument", "detector", required=True, help="Detector, e.g. stis_ccd.")
@click.option("--stage", "stage_name", required=True, help="Stage name (see `hstcal stages`).")
@click.argument("inputs", nargs=-1, type=click.Path())
@click.option("--out", "out", default=None, type=click.Path(), help="Output file or directory.")
@click.option("--basebias", default=None, type=click.Path(), help="Baseline superbias (weekbias).")
@click.option("--basedark", default=None, type=click.Path(), help="Baseline superdark (weekdark).")
@click.option("--bias", default=None, type=click.Path(), help="Superbias to subtract (darks).")
@click.option("--anneal-table", default=None, type=click.Path(), help="Anneal table (anneal stage).")
@click.option("--crrejtab", default=None, type=click.Path(), help="CRREJTAB for rejection parameters.")
@click.option("--useafter", default=None, help="USEAFTER of the product.")
@click.option("--store", default=None, type=click.Path(), help="HDF5 store (crstats).")
@click.option("--step", default=None, type=float, help="Bin width, s (lightcurve, composite).")
@click.option("--wave-min", default=None, type=float, help="Lower wavelength, Å (lightcurve).")
@click.option("--wave-max", default=None, type=float, help="Upper wavelength, Å (lightcurve).")
@click.option("--catalog", default=None, type=click.Path(),
              help="Local reference catalog, FITS/ECSV (drizzle a posteriori alignment).")
@click.option("--aposteriori/--no-aposteriori", default=None,
              help="Fit to a reference catalog (drizzle; flag > $ASTROMETRY_COMPUTE_APOSTERIORI).")
@click.option("--apriori/--no-apriori", default=None,
              help="Astrometry-database solutions (drizzle; flag > $ASTROMETRY_APPLY_APRIORI).")
@click.option("--force", is_flag=True, default=None, help="Drizzle even when DRIZCORR=OMIT.")
@click.option("--config", "config", default=None, type=click.Path(), help="YAML parameter file.")
@click.option("--save-config", default=None, type=click.Path(), help="Write the effective parameters.")
@click.option("-p", "--param", "pairs", multiple=True, metavar="KEY=VALUE",
              help="Any stage parameter (see --list-params).")
@click.option("--list-params", is_flag=True, help="Print the stage's parameters and exit.")
def run(detector, stage_name, inputs, out, basebias, basedark, bias, anneal_table, crrejtab,
        useafter, store, step, wave_min, wave_max, catalog, aposteriori, apriori, force,
        config, save_config, pairs, list_params) -> None:
    """Run one stage on INPUTS for one detector.

    Parameter precedence: these flags and -p > --config YAML > plugin defaults.
    """
    if list_params:
        registry = get_registry()
        for p in stage_params(stage(stage_name), registry.entry(detector)):
            click.echo(f"{p.name:<22} default={p.default!r:<24} {p.help}")
        return
    params = _parse_pairs(pairs)
    for key, value in (("basebias", basebias), ("basedark", basedark), ("bias", bias),
                       ("anneal_table", anneal_table), ("crrejtab", crrejtab),
                       ("useafter", useafter), ("store", store), ("step", step),
                       ("wave_min", wave_min), ("wave_max", wave_max),
                       ("catalog", catalog), ("aposteriori", aposteriori),
                       ("apriori", apriori), ("force", force)):
        if value is not None:
            params[key] = value
    result = run_stage(stage_name, detector=detector, inputs=[Path(i) for i in inputs],
                       out=out, config=config, save_config=save_config, **params)
    for path in result.products:
        click.echo(f"product  {path}")
    for what, reason in result.skipped:
        click.echo(f"skipped  {what}: {reason}")
    for what, reason in result.failures:
        click.echo(f"FAILED   {what}: {reason}", err=True)
    if result.failures:
        sys.exit(1)


from .cli_archive import archive as _archive  # noqa: E402
from .cli_campaign import campaign as _campaign  # noqa: E402
from .cli_census import census as _census  # noqa: E402
from .cli_lightcurve import lightcurve as _lightcurve  # noqa: E402

main.add_command(_archive)
main.add_command(_campaign)
main.add_command(_census)
main.add_command(_lightcurve)

if __name__ == "__main__":  # pragma: no cover
    main()
