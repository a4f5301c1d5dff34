"""Builds the libFuzzer targets (tests/fuzz/run.sh) and runs each briefly; fails on any crash.

tools/test runs the suite twice (plain build, then ASan+UBSan). The fuzz targets are built with
the sanitizers either way, so fuzzing twice would find nothing new: the plain suite fuzzes each
target for 15 seconds, the sanitizer suite only replays the regression seeds."""
import os
import pathlib
import shutil
import subprocess

import pytest

from conftest import BUILD, ROOT

RUN = ROOT / "tests" / "fuzz" / "run.sh"


def _can_get_clang():
    if shutil.which("clang"):
        return True
    # run.sh installs it from Debian's packages: needs apt-get and root (or sudo)
    return shutil.which("apt-get") is not None and (os.geteuid() == 0 or shutil.which("sudo"))


def test_fuzz_targets():
    if not _can_get_clang():
        pytest.skip("clang is not installed and cannot be installed here (no apt-get or no root)")
    seconds = "0" if pathlib.Path(BUILD).name.endswith("asan") else "15"
    r = subprocess.run([str(RUN), seconds], capture_output=True, timeout=900, cwd=ROOT)
    out = r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")
    print(out)
    assert r.returncode == 0, out[-8000:]
    lines = out.splitlines()
    for name in ("imap_parser", "imap_misc", "imap_proxy", "imap_sort", "mime", "mbox", "sasl",
                 "fs_names", "imap_session"):
        assert any(l.startswith(f"fuzz_{name}: ") and l.endswith("no crash") for l in lines), \
            f"no result for fuzz_{name}:\n{out[-8000:]}"
