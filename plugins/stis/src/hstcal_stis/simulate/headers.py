"""FITS headers of the synthetic raws, their ROOTNAMEs and program ids.

Keyword names, values and comments follow real STIS CCD ``_raw.fits`` files.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from astropy.io import fits
from astropy.time import Time

from .layout import _AMP, _Layout

_PROPOSID = {"bias": 12400, "dark": 12401}
_PROPTTL1 = {"bias": "STIS CCD Bias Monitor (synthetic, hstcal)",
             "dark": "STIS CCD Dark Monitor (synthetic, hstcal)"}
_CCD_CENTER = (532, 523)  # CENTERA1/2 of full-frame STIS CCD readouts (real raws)
_SIZAXIS = (1062, 1044)
_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def _base36(value: int, width: int) -> str:
    out = ""
    for _ in range(width):
        value, digit = divmod(value, 36)
        out = _BASE36[digit] + out
    return out


def _program_id(kind: str, gain: int, binning: str, seed: int) -> str:
    digest = hashlib.blake2b(f"{kind}|{gain}|{binning}|{seed}".encode(), digest_size=8).digest()
    return _base36(int.from_bytes(digest, "big") % 36**3, 3)


def _iso(mjd: float) -> datetime:
    return Time(mjd, format="mjd", scale="utc").to_datetime()


def _primary_header(*, kind, rootname, gain, binx, biny, nimsets, expstart, expend,
                    exptime, seed) -> fits.Header:
    t0 = _iso(float(expstart[0]))
    cards = [
        ("SIMPLE", True, "data conform to FITS standard"),
        ("BITPIX", 16, "bits per data value"),
        ("NAXIS", 0, "number of data axes"),
        ("EXTEND", True, "File may contain standard extensions"),
        ("NEXTEND", 3 * nimsets, "Number of standard extensions"),
        ("DATE", _iso(float(expend[-1])).strftime("%Y-%m-%d"), "date this file was written"),
        ("FILENAME", f"{rootname}_raw.fits", "name of file"),
        ("FILETYPE", "SCI", "type of data found in data file"),
        ("TELESCOP", "HST", "telescope used to acquire data"),
        ("INSTRUME", "STIS", "identifier for instrument used to acquire data"),
        ("EQUINOX", 2000.0, "equinox of celestial coord. system"),
        ("ROOTNAME", rootname, "rootname of the observation set"),
        ("PRIMESI", "STIS", "instrument designated as prime"),
        ("TARGNAME", kind.upper(), "proposer's target name"),
        ("RA_TARG", 0.0, "right ascension of the target (deg) (J2000)"),
        ("DEC_TARG", 0.0, "declination of the target (deg) (J2000)"),
        ("PROPOSID", _PROPOSID[kind], "PEP proposal identifier"),
        ("LINENUM", "1.001", "proposal logsheet line number"),
        ("PR_INV_L", "Synthetic", "last name of principal investigator"),
        ("PROPTTL1", _PROPTTL1[kind], "proposal title"),
        ("TDATEOBS", t0.strftime("%Y-%m-%d"), "UT date of start of first exposure in file"),
        ("TTIMEOBS", t0.strftime("%H:%M:%S"), "UT start time of first exposure in file"),
        ("TEXPSTRT", float(expstart[0]), "start time (MJD) of 1st exposure in file"),
        ("TEXPEND", float(expend[-1]), "end time (MJD) of last exposure in the file"),
        ("TEXPTIME", float(exptime * nimsets), "total exposure time (seconds)"),
        ("OBSTYPE", "IMAGING", "observation type - imaging or spectroscopic"),
        ("OBSMODE", "ACCUM", "operating mode"),
        ("SCLAMP", "NONE", "lamp status, NONE or name of lamp which is on"),
        ("NRPTEXP", nimsets, "number of repeat exposures in set: default 1"),
        ("SUBARRAY", False, "data from a subarray (T) or full frame (F)"),
        ("DETECTOR", "CCD", "detector in use: NUV-MAMA, FUV-MAMA, or CCD"),
        ("OPT_ELEM", "MIRVIS", "optical element in use"),
        ("APERTURE", "50CCD", "aperture name"),
        ("PROPAPER", "50CCD", "proposed aperture name"),
        ("FILTER", "Clear", "filter in use"),
        ("CRSPLIT", 1, "number of cosmic ray split exposures"),
        ("CCDAMP", _AMP, "CCD amplifier read out (A,B,C,D)"),
        ("CCDGAIN", gain, "commanded gain of CCD"),
        ("CCDOFFST", 3, "commanded CCD bias offset"),
        ("CENTERA1", _CCD_CENTER[0], "subarray axis1 center pt in unbinned dect. pix"),
        ("CENTERA2", _CCD_CENTER[1], "subarray axis2 center pt in unbinned dect. pix"),
        ("SIZAXIS1", _SIZAXIS[0], "subarray axis1 size in unbinned detector pixels"),
        ("SIZAXIS2", _SIZAXIS[1], "subarray axis2 size in unbinned detector pixels"),
        ("BINAXIS1", binx, "axis1 data bin size in unbinned detector pixels"),
        ("BINAXIS2", biny, "axis2 data bin size in unbinned detector pixels"),
        ("DQICORR", "PERFORM", "data quality initialization"),
        ("BLEVCORR", "PERFORM", "subtract bias level computed from overscan img"),
        ("BIASCORR", "PERFORM", "Subtract bias image"),
        ("CRCORR", "PERFORM", "combine observations to reject cosmic rays"),
        ("DARKCORR", "PERFORM", "Subtract dark image"),
        ("CRREJTAB", "oref$j3m1403io_crr.fits", "cosmic ray rejection parameters"),
        ("ATODGAIN", 0.0, "calibrated CCD amplifier gain value"),
        ("READNSE", 0.0, "calibrated CCD read noise value"),
    ]
    header = fits.Header(cards)
    header.add_history(f"Synthetic STIS CCD {kind} written by hstcal_stis.simulate (seed {seed}).")
    return header


def _ext_header(extname: str, extver: int, *, rootname: str, expname: str,
                layout: _Layout, data: bool) -> list[tuple]:
    ltv1, ltv2, ltm1, ltm2 = layout.ltv()
    ny, nx = layout.raw_shape
    cards = [("INHERIT", True, "inherit the primary header"),
             ("EXTNAME", extname, "extension name"),
             ("EXTVER", extver, "extension version number"),
             ("ROOTNAME", rootname, "rootname of the observation set"),
             ("EXPNAME", expname, "exposure identifier"),
             ("BUNIT", "UNITLESS" if extname == "DQ" else "COUNTS", "brightness units")]
    if not data:
        cards += [("NPIX1", nx, "length of constant array axis 1"),
                  ("NPIX2", ny, "length of constant array axis 2"),
                  ("PIXVALUE", 0 if extname == "DQ" else 0.0, "values of pixels in constant array")]
    cards += [("LTV1", ltv1, "offset in X to subsection start"),
              ("LTV2", ltv2, "offset in Y to subsection start"),
              ("LTM1_1", ltm1, "reciprocal of sampling rate in X"),
              ("LTM2_2", ltm2, "reciprocal of sampling rate in Y")]
    return cards


def _empty_hdu(cards: list[tuple]) -> fits.ImageHDU:
    """An ImageHDU without data and BITPIX = 16, as calstis raw ERR/DQ extensions."""
    header = fits.Header([("XTENSION", "IMAGE", "extension type"),
                          ("BITPIX", 16, "bits per data value"),
                          ("NAXIS", 0, "number of data axes"),
                          ("PCOUNT", 0, "number of group parameters"),
                          ("GCOUNT", 1, "number of groups"), *cards])
    return fits.ImageHDU.fromstring(header.tostring().encode())
