"""Shared test helpers: tiny hand-made STIS-like raw files for input-validation tests.

Algorithm tests use the full simulator (hstcal_stis.simulate) with its ground truth;
these small files only exercise error paths and bookkeeping quickly.

``database_url`` runs a test on SQLite and on PostgreSQL (the server named by
``HSTCAL_TEST_POSTGRES``, which ``.ci/run`` starts with ``.ci/postgres.sh``).

``offline`` (and :func:`refuse_network` for module-scoped fixtures) keeps the drizzle
tests off the network and free of the astrometry switches of the shell.
"""

import gc
import os
import socket
import uuid
import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits


def write_stis_raw(path: Path, *, shape=(64, 64), nimsets=2, gain=1, binning=(1, 1),
                   targname="BIAS", exptime=0.0, texpstrt=55600.0, seed=0, instrument="STIS",
                   detector="CCD", level=1124.0, nan=False) -> Path:
    rng = np.random.default_rng(seed)
    primary = fits.PrimaryHDU()
    h = primary.header
    h["NEXTEND"] = 3 * nimsets
    h["TELESCOP"] = "HST"
    h["INSTRUME"] = instrument
    h["DETECTOR"] = detector
    h["ROOTNAME"] = path.name.split("_")[0]
    h["TARGNAME"] = targname
    h["OBSTYPE"] = "IMAGING"
    h["CCDAMP"] = "D"
    h["CCDGAIN"] = gain
    h["CCDOFFST"] = 3
    h["BINAXIS1"], h["BINAXIS2"] = binning
    h["ATODGAIN"] = 0.0
    h["READNSE"] = 0.0
    h["PROPOSID"] = 12400
    h["TEXPSTRT"] = texpstrt
    h["TEXPEND"] = texpstrt + 0.01 * nimsets
    h["TEXPTIME"] = exptime * nimsets
    hdus = [primary]
    for ver in range(1, nimsets + 1):
        data = (level + rng.normal(0, 6.0, shape)).astype(np.float32)
        if nan:
            data[3, 3] = np.nan
            sci = fits.ImageHDU(data, name="SCI", ver=ver)
        else:
            sci = fits.ImageHDU(np.round(data).astype(np.uint16), name="SCI", ver=ver)
        sci.header["EXPTIME"] = exptime
        sci.header["EXPSTART"] = texpstrt + 0.01 * (ver - 1)
        sci.header["EXPEND"] = texpstrt + 0.01 * ver
        sci.header["NCOMBINE"] = 1
        hdus += [sci, fits.ImageHDU(name="ERR", ver=ver), fits.ImageHDU(name="DQ", ver=ver)]
    fits.HDUList(hdus).writeto(path)
    return path


@pytest.fixture
def stis_raw(tmp_path):
    """Factory: ``stis_raw("name_raw.fits", **kwargs)`` writes a small STIS-like raw."""

    def make(name, **kwargs):
        return write_stis_raw(tmp_path / name, **kwargs)

    return make


POSTGRES_ENV = "HSTCAL_TEST_POSTGRES"


ASTROMETRY_SWITCHES = ("ASTROMETRY_COMPUTE_APOSTERIORI", "ASTROMETRY_APPLY_APRIORI",
                       "ASTROMETRY_STEP_CONTROL")


def refuse_network(mp: pytest.MonkeyPatch, *, allow: tuple[str, ...] = ()) -> None:
    """Refuse every socket connection except to the hosts in ``allow``, and clear the
    astrometry switches (runastrodriz's environment variables)."""
    connect = socket.socket.connect

    def guarded(self, address):
        host = address[0] if isinstance(address, tuple) else address
        if host not in allow:
            raise OSError(f"test is offline: connection to {address!r} refused")
        return connect(self, address)

    mp.setattr(socket.socket, "connect", guarded)
    for name in ASTROMETRY_SWITCHES:
        mp.delenv(name, raising=False)


@pytest.fixture
def offline(monkeypatch):
    """No connection leaves the machine; no astrometry switch leaks in from the shell."""
    refuse_network(monkeypatch)


@pytest.fixture(scope="session")
def network_guard():
    """:func:`refuse_network`, for fixtures of a wider scope than ``monkeypatch``."""
    return refuse_network


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """A SQLAlchemy URL of an empty database, once per backend.

    ``sqlite``: a file in ``tmp_path``.  ``postgresql``: a fresh database
    ``hstcal_t_<random>`` on the server of ``$HSTCAL_TEST_POSTGRES`` (any database URL
    on it, e.g. the ``.../hstcal_test`` that ``.ci/postgres.sh`` prints), dropped after
    the test; skipped when the variable is not set, an error when the server is
    unreachable (CI must not pass without it).
    """
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/x.sqlite"
        return
    admin_url = os.environ.get(POSTGRES_ENV)
    if not admin_url:
        pytest.skip(f"{POSTGRES_ENV} not set (CI starts a server: .ci/postgres.sh)")
    import sqlalchemy as sa

    name = f"hstcal_t_{uuid.uuid4().hex[:16]}"
    try:
        admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT",
                                 poolclass=sa.pool.NullPool)
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 - any failure here means no PostgreSQL run
        pytest.fail(f"{POSTGRES_ENV} is set but no test database could be created on its "
                    f"server: {exc}", pytrace=False)
    # The code under test opens engines and leaves their pooled connections to the
    # garbage collector, which psycopg reports (ResourceWarning) whenever it runs.
    request.applymarker(pytest.mark.filterwarnings(_UNCLOSED))
    try:
        yield sa.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        _dispose_engines(name)
        with admin.connect() as conn:
            conn.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                 "WHERE datname = :d AND pid <> pg_backend_pid()"), {"d": name})
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


_UNCLOSED = "ignore:.*was deleted while still open:ResourceWarning"


def _dispose_engines(database: str) -> None:
    """Close the pooled connections of every engine the test left on ``database``.

    Otherwise psycopg would warn (ResourceWarning, an error here) when the garbage
    collector meets them later, in whatever test is running then.
    """
    import sqlalchemy as sa

    for obj in gc.get_objects():  # also finds unreachable engines not yet collected
        if isinstance(obj, sa.Engine) and obj.url.database == database:
            obj.dispose()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*was deleted while still open", ResourceWarning)
        gc.collect()
