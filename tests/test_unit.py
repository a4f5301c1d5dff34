"""Runs every C unit test binary (BUILD/tests/**/unit_*) and fails on a non-zero exit."""
import os
import subprocess

import pytest

from conftest import BUILD, CORPUS

UNITS = sorted(p for p in (BUILD / "tests").rglob("unit_*")
               if p.is_file() and os.access(p, os.X_OK) and p.suffix == "")


@pytest.mark.parametrize("binary", UNITS, ids=[p.name for p in UNITS])
def test_unit(binary):
    args = [str(binary)]
    if CORPUS.is_dir():
        args.append(str(CORPUS))
    r = subprocess.run(args, capture_output=True, timeout=600)
    out = r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")
    assert r.returncode == 0, out[-5000:]
    assert " passed, 0 failed" in out, out[-2000:]


def test_units_were_built():
    want = {"unit_store", "unit_log", "unit_text", "unit_inodes", "unit_mime", "unit_imap_parser",
            "unit_imap_seqset", "unit_imap_utf7", "unit_imap_msg", "unit_imap_list"}
    assert want <= {p.name for p in UNITS}, f"missing under {BUILD / 'tests'}"
