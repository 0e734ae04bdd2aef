"""``hstcal census summary|report``: look at a cosmic-ray census store.

The store is the HDF5 file a campaign's ``crstats`` stage appends to (see
``docs/census.md``).  Reading needs the file closed by its writer: HDF5 locks a
file a running campaign holds open.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from .cli_group import HstcalGroup

__all__ = ["census"]


@click.group(cls=HstcalGroup)
def census() -> None:
    """Summarise and plot a cosmic-ray census store (HDF5)."""


@census.command("summary")
@click.argument("store", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def summary_command(store: Path, as_json: bool) -> None:
    """Exposures and cosmic rays per detector, and the dates they span."""
    from .census.store import summary

    info = summary(store)
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    click.echo(f"store     {info['path']} (schema {info.get('schema_version')}, "
               f"{info.get('created_by', '?')})")
    click.echo(f"contents  {info['exposures']} exposure(s), {info['crs']} CR(s), "
               f"{info['batches']} batch(es)")
    if info["start"] is not None:
        click.echo(f"span      {info['start']} .. {info['end']} "
                   f"(MJD {info['start_mjd']:.3f} .. {info['end_mjd']:.3f})")
    if info["detectors"]:
        click.echo(f"{'detector':<14} {'exposures':>9} {'CRs':>12} {'median rate':>12}  span")
    for name, d in info["detectors"].items():
        click.echo(f"{name:<14} {d['exposures']:>9} {d['crs']:>12} {d['median_rate']:>12.4g}  "
                   f"{d['start'][:10]} .. {d['end'][:10]}")


@census.command("report")
@click.argument("store", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Directory for the PNG plots and index.html (created if needed).")
@click.option("--lat-step", default=4.0, show_default=True, type=float,
              help="Latitude bin of the rate map, degrees.")
@click.option("--lon-step", default=8.0, show_default=True, type=float,
              help="Longitude bin of the rate map, degrees.")
def report_command(store: Path, out_dir: Path, lat_step: float, lon_step: float) -> None:
    """Plot rate against time, rate over the Earth and CR property histograms.

    Writes rate_vs_time.png, rate_map.png, cr_histograms.png and index.html.
    """
    from .census.report import make_report

    if lat_step <= 0 or lon_step <= 0:
        raise click.BadParameter("bin sizes must be positive", param_hint="--lat-step/--lon-step")
    result = make_report(store, out_dir, lat_step=lat_step, lon_step=lon_step)
    for image in result.images:
        click.echo(f"plot     {image}")
    click.echo(f"report   {result.index}")
