"""The ingest flow (hstlc's ``ingest_hstlc``): a directory of event files in, lightcurves,
composites, quicklooks and database rows out, inputs filed by target.

Per exposure (event files grouped by rootname, with their x1d/spt companions):

1. checks → a ``bad_data`` row with the reason and the files moved to ``bad_data/``;
2. the lightcurve product and its quicklook written (atomically) under
   ``outputs/<TARGET>/``;
3. one transaction: ``metadata`` rows (with the files' final paths), ``outputs`` and
   ``stats`` rows;
4. only then the files moved from ``ingest/`` to ``filesystem/<TARGET>/``.

A crash between 3 and 4 leaves committed rows and files still in ``ingest/``: the
next run sees the rows and finishes the move.  Composites are rebuilt for every
(instrument, detector, target, grating, cenwave, aperture) whose members are not all
in its current composite, so a crash before them is also finished by a rerun.
TARGNAME never reaches a path unsanitised (:func:`~hstcal_core.timetag.paths.safe_component`),
and nothing is moved, written or deleted outside the configured roots.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import sqlalchemy as sa
from astropy.io import fits

from ..errors import HstcalError, InputError
from ..registry import Registry, get_registry
from ..stages import make_context
from . import db
from .config import IngestConfig
from .events import EventList, TimeTagInput
from .paths import require_within, safe_component
from .products import curve_name, write_curve
from .quicklook import write_quicklook
from .stage import Curve, build_composite, build_curve, composite_key, read_events

__all__ = ["IngestReport", "ingest", "EVENT_FILE", "scan_ingest", "reset_database",
           "reset_filesystem"]

log = logging.getLogger(__name__)

# Event lists: COS corrtag/rawtag (segment suffix for FUV), STIS tag.
EVENT_FILE = re.compile(r"^([a-z0-9]{9})_(corrtag|rawtag)(_[ab])?\.fits(\.gz)?$|"
                        r"^([a-z0-9]{9})_tag\.fits(\.gz)?$", re.IGNORECASE)
_ANY_EXPOSURE_FILE = re.compile(r"^([a-z0-9]{9})_[a-z0-9_]+\.fits(\.gz)?$", re.IGNORECASE)
# FITS string values hold at most 68 characters; a target name that needs path syntax,
# control characters or more room is not a proposal's target name.
_SANE_TARGNAME = re.compile(r"^[A-Za-z0-9_.+\-*()\[\]:;,'\" ]{1,68}$")

# bad_data reasons
NO_EVENTS = "no events"
BAD_EXPFLAG = "bad EXPFLAG"
NON_MONOTONIC = "non-monotonic TIME"
SINGLE_TIME = "single time"
SHORT_EXPTIME = "EXPTIME < 1 s"
UNREADABLE = "unreadable"
MISSING_X1D = "missing x1d"
UNSAFE_TARGNAME = "unsafe TARGNAME"
UNSUPPORTED = "unsupported detector"


@dataclass
class IngestReport:
    """What one ingest run did."""

    ingested: list[str] = field(default_factory=list)       # rootnames
    resumed: list[str] = field(default_factory=list)        # rows found, files moved
    bad: list[tuple[str, str]] = field(default_factory=list)  # (rootname, reason)
    products: list[Path] = field(default_factory=list)
    composites: list[Path] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)      # files left in ingest/


@dataclass
class _Exposure:
    rootname: str
    event_files: list[Path]
    companions: list[Path]

    @property
    def files(self) -> list[Path]:
        return self.event_files + self.companions


def scan_ingest(ingest_dir: Path) -> list[_Exposure]:
    """Exposures waiting in ``ingest_dir``: event files grouped by rootname, with every
    other ``<rootname>_*.fits`` beside them as companions.  Corrtags are preferred
    over rawtags of the same exposure (the rawtags travel as companions)."""
    by_root: dict[str, list[Path]] = defaultdict(list)
    for path in sorted(ingest_dir.iterdir()):
        if path.is_file() and not path.is_symlink():
            m = _ANY_EXPOSURE_FILE.match(path.name)
            if m:
                by_root[m.group(1).lower()].append(path)
    exposures = []
    for root, paths in by_root.items():
        events = [p for p in paths if EVENT_FILE.match(p.name)]
        if not events:
            continue
        corrtags = [p for p in events if "_corrtag" in p.name.lower()]
        chosen = corrtags or events
        exposures.append(_Exposure(root, chosen, [p for p in paths if p not in chosen]))
    return exposures


def _detector_for(registry: Registry, header: fits.Header) -> str | None:
    instrume = str(header.get("INSTRUME", "")).strip().upper()
    detector = str(header.get("DETECTOR", "")).strip().upper()
    for name, entry in sorted(registry.detectors.items()):
        det = entry.detector
        if (det.extra.get("timetag") and det.instrument.upper() == instrume
                and det.detector.upper() == detector and "lightcurve" in entry.stages):
            return name
    return None


def _read_checks(path: Path) -> tuple[fits.Header, str | None, str]:
    """Merged header of an event file and the first bad-data reason found (or None)."""
    try:
        with fits.open(path, memmap=False) as hdul:
            header = hdul[0].header.copy()
            names = [h.name.upper() for h in hdul]
            if "EVENTS" not in names:
                return header, UNREADABLE, "no EVENTS extension"
            events = hdul["EVENTS"]
            # As hstcal_core.timetag.eventfile merges them (structural keys stripped).
            header.extend(events.header, update=True, strip=True)
            header.remove("EXTNAME", ignore_missing=True)
            time = np.asarray(events.data["TIME"]) if events.data is not None else np.zeros(0)
    except Exception as exc:  # any unreadable file is refused, with what went wrong
        return fits.Header(), UNREADABLE, f"{type(exc).__name__}: {exc}"
    targname = str(header.get("TARGNAME", ""))
    if not _SANE_TARGNAME.match(targname) or ".." in targname or "/" in targname:
        return header, UNSAFE_TARGNAME, f"TARGNAME {targname[:80]!r} cannot name a directory"
    if len(time) == 0:
        return header, NO_EVENTS, "the EVENTS table has no rows"
    expflag = str(header.get("EXPFLAG", "NORMAL")).strip().upper()
    if expflag != "NORMAL":
        return header, BAD_EXPFLAG, f"EXPFLAG = {expflag}"
    exptime = float(header.get("EXPTIME", 0.0) or 0.0)
    if exptime < 1.0:
        return header, SHORT_EXPTIME, f"EXPTIME = {exptime} s"
    if np.any(np.diff(time) < 0):
        return header, NON_MONOTONIC, "TIME decreases between consecutive events"
    if time[0] == time[-1]:
        return header, SINGLE_TIME, f"every event has TIME = {time[0]}"
    return header, None, ""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _move(src: Path, dst_dir: Path, root: Path) -> Path:
    """Move ``src`` into ``dst_dir`` (inside ``root``) without losing a byte.

    An identical file already there means the move was done (the source is dropped);
    a different one is a conflict (``FileExistsError``; the source stays put).
    """
    dst = require_within(root, dst_dir / src.name)
    dst_dir.mkdir(parents=True, exist_ok=True)
    if dst.exists():
        if dst.stat().st_size == src.stat().st_size and _sha256(dst) == _sha256(src):
            src.unlink()
            return dst
        raise FileExistsError(f"{dst} exists and differs from {src}")
    try:
        os.replace(src, dst)
    except OSError:  # another filesystem: copy, flush, rename, then drop the source
        tmp = dst.with_name(f".{dst.name}.part")
        shutil.copy2(src, tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, dst)
        src.unlink()
    return dst


class _Ingest:
    def __init__(self, config: IngestConfig, registry: Registry):
        self.config = config
        self.registry = registry
        config.make_dirs()
        self.engine = db.connect_lightcurve_db(config.database)
        self.report = IngestReport()
        self._contexts: dict[str, object] = {}

    def context(self, detector: str, stage: str = "lightcurve"):
        key = f"{detector}/{stage}"
        if key not in self._contexts:
            self._contexts[key] = make_context(stage, detector=detector,
                                               config=dict(self.config.lightcurve),
                                               registry=self.registry)
        return self._contexts[key]

    # ----------------------------------------------------------------- bookkeeping
    def _known(self, rootname: str) -> tuple[str | None, str | None]:
        """(target_dir of committed metadata rows, bad_data reason) for a rootname."""
        with self.engine.connect() as conn:
            target = conn.execute(sa.select(db.metadata_table.c.target_dir)
                                  .where(db.metadata_table.c.rootname == rootname)
                                  .limit(1)).scalar()
            reason = conn.execute(sa.select(db.bad_data.c.reason)
                                  .where(db.bad_data.c.rootname == rootname)
                                  .limit(1)).scalar()
        return target, reason

    def _move_all(self, files: Iterable[Path], dst_dir: Path, root: Path) -> None:
        for path in files:
            if not path.exists():
                continue
            try:
                _move(path, dst_dir, root)
            except FileExistsError as exc:
                log.error("%s; left in %s", exc, path.parent)
                self.report.conflicts.append(str(path))

    def _reject(self, exposure: _Exposure, reason: str, detail: str) -> None:
        log.warning("%s refused (%s): %s", exposure.rootname, reason, detail)
        now = db.utcnow()
        with self.engine.begin() as conn:
            for path in exposure.files:
                conn.execute(sa.delete(db.bad_data).where(db.bad_data.c.filename == path.name))
                conn.execute(sa.insert(db.bad_data).values(
                    filename=path.name, path=str(self.config.bad_data / path.name),
                    rootname=exposure.rootname, reason=reason, detail=detail[:2000],
                    recorded_at=now))
        self._move_all(exposure.files, self.config.bad_data, self.config.bad_data)
        self.report.bad.append((exposure.rootname, reason))

    # ----------------------------------------------------------------- one exposure
    def exposure(self, exposure: _Exposure) -> None:
        target_dir, bad_reason = self._known(exposure.rootname)
        if target_dir is not None:
            self._move_all(exposure.files, self.config.filesystem / target_dir,
                           self.config.filesystem)
            self.report.resumed.append(exposure.rootname)
            return
        if bad_reason is not None:
            self._move_all(exposure.files, self.config.bad_data, self.config.bad_data)
            self.report.resumed.append(exposure.rootname)
            return
        headers = []
        for path in exposure.event_files:
            header, reason, detail = _read_checks(path)
            if reason:
                self._reject(exposure, reason, f"{path.name}: {detail}")
                return
            headers.append(header)
        detector = _detector_for(self.registry, headers[0])
        if detector is None:
            self._reject(exposure, UNSUPPORTED,
                         f"no TIME-TAG detector registered for INSTRUME="
                         f"{headers[0].get('INSTRUME')!r} DETECTOR={headers[0].get('DETECTOR')!r}")
            return
        ctx = self.context(detector)
        try:
            events = read_events(ctx, TimeTagInput(exposure.rootname,
                                                   tuple(exposure.event_files)))
            curve = build_curve(ctx, events)
        except HstcalError as exc:
            text = str(exc)
            reason = MISSING_X1D if "x1d" in text.lower() else UNREADABLE
            self._reject(exposure, reason, text)
            return
        target_dir = safe_component(events.header.get("TARGNAME", "unknown"))
        out_dir = require_within(self.config.outputs, self.config.outputs / target_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        product = write_curve(curve.hdul, out_dir / curve_name(events.rootname))
        paths = [("individual", product)]
        if self.config.quicklooks:
            paths.append(("quicklook", write_quicklook(product)))
        fs_dir = self.config.filesystem / target_dir
        self._commit(exposure, headers, events, detector, target_dir, fs_dir, paths,
                     stats_name=events.rootname, curve=curve)
        self._move_all(exposure.files, fs_dir, self.config.filesystem)
        self.report.ingested.append(exposure.rootname)
        self.report.products.append(product)

    def _commit(self, exposure: _Exposure, headers: Sequence[fits.Header], events: EventList,
                detector: str, target_dir: str, fs_dir: Path, paths, *, stats_name: str,
                curve: Curve) -> None:
        h = events.header
        now = db.utcnow()

        def text(key: str) -> str | None:
            v = h.get(key)
            return None if v is None else str(v).strip()[:128]

        def number(key: str) -> float | None:
            try:
                return float(h[key])
            except (KeyError, TypeError, ValueError):
                return None

        with self.engine.begin() as conn:
            ids = []
            for path, file_header in zip(exposure.event_files, headers):
                segment = file_header.get("SEGMENT")
                ids.append(conn.execute(sa.insert(db.metadata_table).values(
                    filename=path.name, path=str(fs_dir / path.name),
                    rootname=exposure.rootname, detector_name=detector,
                    instrument=text("INSTRUME"), detector=text("DETECTOR"),
                    segment=None if segment is None else str(segment),
                    opt_elem=text("OPT_ELEM"), cenwave=text("CENWAVE"),
                    aperture=text("APERTURE"), targname=text("TARGNAME"),
                    target_dir=target_dir, ra_targ=number("RA_TARG"),
                    dec_targ=number("DEC_TARG"), expstart=number("EXPSTART"),
                    exptime=number("EXPTIME"), expflag=text("EXPFLAG"),
                    ingested_at=now)).inserted_primary_key[0])
            for kind, path in paths:
                for mid in ids:
                    conn.execute(sa.insert(db.outputs).values(metadata_id=mid, kind=kind,
                                                              path=str(path), created_at=now))
            self._write_stats(conn, stats_name, "individual", paths[0][1], curve)

    @staticmethod
    def _write_stats(conn, name: str, kind: str, path: Path, curve: Curve) -> None:
        st, pg = curve.stats, curve.periodogram
        values = {k: (v if v is None or np.isfinite(v) else None)
                  for k, v in st.as_dict().items()}
        conn.execute(sa.delete(db.stats).where(db.stats.c.name == name))
        conn.execute(sa.insert(db.stats).values(
            name=name, kind=kind, lightcurve_path=str(path), updated_at=db.utcnow(),
            peak_frequency=None if pg is None else pg.peak_frequency,
            peak_power=None if pg is None else pg.peak_power,
            false_alarm_probability=None if pg is None else pg.false_alarm_probability,
            **values))

    # ----------------------------------------------------------------- composites
    def composites(self) -> None:
        """Rebuild every composite whose members are not all in its current product."""
        m, o = db.metadata_table, db.outputs
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(m.c.id, m.c.rootname, m.c.path, m.c.detector_name,
                                          m.c.instrument, m.c.detector, m.c.targname,
                                          m.c.opt_elem, m.c.cenwave, m.c.aperture,
                                          m.c.target_dir)).all()
            done = {(r.metadata_id, r.path) for r in conn.execute(
                sa.select(o.c.metadata_id, o.c.path).where(o.c.kind == "composite"))}
        groups: dict[tuple, list] = defaultdict(list)
        for r in rows:
            groups[(r.detector_name, r.instrument, r.detector, r.targname, r.opt_elem,
                    r.cenwave, r.aperture)].append(r)
        for key, members in groups.items():
            name = composite_key({"INSTRUME": key[1], "DETECTOR": key[2], "TARGNAME": key[3],
                                  "OPT_ELEM": key[4], "CENWAVE": key[5],
                                  "APERTURE": key[6]}).filename
            target_dir = members[0].target_dir
            product = require_within(self.config.outputs,
                                     self.config.outputs / target_dir / name)
            if all((r.id, str(product)) in done for r in members) and product.exists():
                continue
            self._composite(key[0], members, product)

    def _composite(self, detector: str, members: Sequence, product: Path) -> None:
        ctx = self.context(detector)
        by_root: dict[str, list[Path]] = defaultdict(list)
        for r in members:
            by_root[r.rootname].append(Path(r.path))
        events = []
        for root, files in sorted(by_root.items()):
            try:
                events.append(read_events(ctx, TimeTagInput(root, tuple(files))))
            except HstcalError as exc:  # filed data that no longer reads: say so, go on
                log.error("composite %s: member %s skipped: %s", product.name, root, exc)
        if not events:
            return
        try:
            curve = build_composite(ctx, events)
        except HstcalError as exc:
            log.error("composite %s not made: %s", product.name, exc)
            return
        product.parent.mkdir(parents=True, exist_ok=True)
        write_curve(curve.hdul, product)
        paths = [("composite", product)]
        if self.config.quicklooks:
            paths.append(("quicklook", write_quicklook(product)))
        now = db.utcnow()
        with self.engine.begin() as conn:
            for r in members:
                for kind, path in paths:
                    conn.execute(sa.delete(db.outputs).where(
                        (db.outputs.c.metadata_id == r.id) & (db.outputs.c.kind == kind)
                        & (db.outputs.c.path == str(path))))
                    conn.execute(sa.insert(db.outputs).values(
                        metadata_id=r.id, kind=kind, path=str(path), created_at=now))
            self._write_stats(conn, product.name, "composite", product, curve)
        self.report.composites.append(product)


def ingest(config: IngestConfig, *, registry: Registry | None = None) -> IngestReport:
    """Run the whole flow on ``config.ingest``; see the module docstring.

    Returns
    -------
    IngestReport
    """
    run = _Ingest(config, registry or get_registry())
    try:
        exposures = scan_ingest(config.ingest)
        log.info("ingest: %d exposure(s) waiting in %s", len(exposures), config.ingest)
        for exposure in exposures:
            try:
                run.exposure(exposure)
            except InputError as exc:  # belt and braces: one exposure never stops the run
                run._reject(exposure, UNREADABLE, str(exc))
        if config.composites:
            run.composites()
    finally:
        run.engine.dispose()
    return run.report


def reset_database(config: IngestConfig) -> list[str]:
    """Drop the lightcurve tables of ``config.database``; returns their names."""
    engine = db.connect(config.database, create=False)
    try:
        return db.drop_lightcurve_tables(engine)
    finally:
        engine.dispose()


def reset_filesystem(config: IngestConfig) -> dict[str, int]:
    """Put every filed input back into ``ingest/`` and delete the products.

    Only regular files inside ``filesystem/``, ``bad_data/`` and ``outputs/`` are touched
    (symlinks are removed as links, never followed); the roots themselves stay.
    """
    counts = {"returned": 0, "deleted": 0}
    for root in (config.filesystem, config.bad_data):
        for path in sorted(root.rglob("*")):
            if path.is_symlink():
                path.unlink()
            elif path.is_file():
                require_within(root, path)
                _move(path, config.ingest, config.ingest)
                counts["returned"] += 1
        _remove_empty_dirs(root)
    for path in sorted(config.outputs.rglob("*")):
        if path.is_symlink() or path.is_file():
            if not path.is_symlink():
                require_within(config.outputs, path)
            path.unlink()
            counts["deleted"] += 1
    _remove_empty_dirs(config.outputs)
    return counts


def _remove_empty_dirs(root: Path) -> None:
    for path in sorted((p for p in root.rglob("*") if p.is_dir() and not p.is_symlink()),
                       key=lambda p: len(p.parts), reverse=True):
        require_within(root, path)
        try:
            path.rmdir()
        except OSError:
            pass
