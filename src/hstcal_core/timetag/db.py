"""The lightcurve database: what was ingested, produced and rejected.

hstlc's four tables (lightcurve_pipeline ``database/``), on SQLAlchemy Core: SQLite file
by default, PostgreSQL by URL (:func:`hstcal_core.db.connect`).  The tables live on
their own :class:`~sqlalchemy.MetaData`, so a lightcurve database holds only these and
``reset --database`` drops exactly these.

* ``metadata``: one row per ingested event file (its exposure's header values, where
  the file lives now).
* ``outputs``: products (individual lightcurves, composites, quicklooks), linked to
  the metadata rows they were made from.
* ``bad_data``: files refused, with the reason (no events, bad EXPFLAG, non-monotonic
  TIME, single time, EXPTIME < 1 s, unreadable, missing x1d, unsafe TARGNAME, ...).
* ``stats``: variability statistics of each lightcurve product.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from ..db import connect

__all__ = ["lc_metadata", "metadata_table", "outputs", "bad_data", "stats",
           "connect_lightcurve_db", "drop_lightcurve_tables", "utcnow"]

lc_metadata = sa.MetaData()

metadata_table = sa.Table(
    "metadata", lc_metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("filename", sa.String(255), nullable=False, unique=True),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("rootname", sa.String(64), nullable=False, index=True),
    sa.Column("detector_name", sa.String(64), nullable=False),
    sa.Column("instrument", sa.String(16)),
    sa.Column("detector", sa.String(16)),
    sa.Column("segment", sa.String(16)),
    sa.Column("opt_elem", sa.String(16)),
    sa.Column("cenwave", sa.String(16)),
    sa.Column("aperture", sa.String(32)),
    sa.Column("targname", sa.String(128)),
    sa.Column("target_dir", sa.String(128), nullable=False),
    sa.Column("ra_targ", sa.Float(precision=53)),
    sa.Column("dec_targ", sa.Float(precision=53)),
    sa.Column("expstart", sa.Float(precision=53)),
    sa.Column("exptime", sa.Float(precision=53)),
    sa.Column("expflag", sa.String(32)),
    sa.Column("ingested_at", sa.DateTime, nullable=False),
)

outputs = sa.Table(
    "outputs", lc_metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("metadata_id", sa.Integer, sa.ForeignKey("metadata.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("kind", sa.String(16), nullable=False),  # individual | composite | quicklook
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.UniqueConstraint("metadata_id", "kind", "path", name="uq_output"),
)

bad_data = sa.Table(
    "bad_data", lc_metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("filename", sa.String(255), nullable=False, unique=True),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("rootname", sa.String(64)),
    sa.Column("reason", sa.String(64), nullable=False),
    sa.Column("detail", sa.Text),
    sa.Column("recorded_at", sa.DateTime, nullable=False),
)

stats = sa.Table(
    "stats", lc_metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("lightcurve_path", sa.Text, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # individual | composite
    sa.Column("name", sa.String(128), nullable=False, unique=True),  # rootname or HLSP name
    sa.Column("n_bins", sa.Integer),
    sa.Column("total_counts", sa.Float(precision=53)),
    sa.Column("mean_counts", sa.Float(precision=53)),
    sa.Column("std_counts", sa.Float(precision=53)),
    sa.Column("poisson_factor", sa.Float(precision=53)),
    sa.Column("mean_flux", sa.Float(precision=53)),
    sa.Column("std_flux", sa.Float(precision=53)),
    sa.Column("pearson_r", sa.Float(precision=53)),
    sa.Column("pearson_p", sa.Float(precision=53)),
    sa.Column("peak_frequency", sa.Float(precision=53)),
    sa.Column("peak_power", sa.Float(precision=53)),
    sa.Column("false_alarm_probability", sa.Float(precision=53)),
    sa.Column("updated_at", sa.DateTime, nullable=False),
)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def connect_lightcurve_db(url: str) -> sa.Engine:
    """Open the lightcurve database at ``url`` (a path means SQLite) and create its tables."""
    engine = connect(url, create=False)
    lc_metadata.create_all(engine)
    return engine


def drop_lightcurve_tables(engine: sa.Engine) -> list[str]:
    """Drop the four lightcurve tables (and nothing else); return the names dropped."""
    present = set(sa.inspect(engine).get_table_names())
    dropped = [t.name for t in reversed(lc_metadata.sorted_tables) if t.name in present]
    lc_metadata.drop_all(engine)
    return dropped
