"""Runs the C unit tests exactly as meson registered them (`meson introspect --tests BUILD`: the
same command lines, arguments and environment as `meson test -C BUILD`), and checks that every
tests/**/unit_*.c is registered, so a unit test cannot be built and then never run."""
import json
import os
import shutil
import subprocess

import pytest

from conftest import BUILD, ROOT


def registered_tests():
    """The tests BUILD's meson knows of, as introspection gives them (name, cmd, env, workdir,
    timeout ...); an empty list when meson or its build directory is missing (test_units_are_
    registered then says why)."""
    meson = shutil.which("meson")
    if meson is None or not (BUILD / "meson-info").is_dir():
        return []
    r = subprocess.run([meson, "introspect", "--tests", str(BUILD)], capture_output=True)
    if r.returncode != 0:
        return []
    return sorted(json.loads(r.stdout), key=lambda t: t["name"])


TESTS = registered_tests()


@pytest.mark.parametrize("t", TESTS, ids=[t["name"] for t in TESTS])
def test_unit(t):
    exe = t["cmd"][0]
    assert os.access(exe, os.X_OK), f"{exe} is not built: run ninja -C {BUILD}"
    env = dict(os.environ, **t.get("env", {}))
    # meson's own timeout (30 s unless the test says) is for a plain build; ASan is slower
    r = subprocess.run(t["cmd"], capture_output=True, env=env, cwd=t.get("workdir") or None,
                       timeout=max(600, 10 * t.get("timeout", 0)))
    out = r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")
    assert r.returncode == 0, out[-5000:]
    assert " passed, 0 failed" in out, out[-2000:]


def test_units_are_registered():
    assert shutil.which("meson"), "meson is not on PATH: it is needed to list the unit tests"
    assert TESTS, (f"meson introspect --tests {BUILD} lists no tests: is {BUILD} a meson build "
                   "directory (MAILFS_BUILD)?")
    sources = sorted(p for p in (ROOT / "tests").rglob("unit_*.c"))
    names = {t["name"] for t in TESTS}
    missing = [str(p.relative_to(ROOT)) for p in sources if p.stem not in names]
    assert not missing, (f"not registered with test() in their meson.build: {', '.join(missing)} "
                         f"(or {BUILD} needs reconfiguring: ninja -C {BUILD})")
