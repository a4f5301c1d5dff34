"""What the mount refuses, and how (issue 10: the mount's Low items).

- A folder rename whose children's names would pass 500 bytes is ENAMETOOLONG on the mount and
  `NO [LIMIT]` over IMAP.

Every test mounts for real (the fixtures of test_mount.py and test_mount_imap.py).
"""
import errno
import os
import subprocess

import pytest

from test_mount import mailbox_counts
from test_mount_imap import imap, serve  # noqa: F401 (fixture)


# ---- long folder names -----------------------------------------------------------------------

def test_rename_whose_children_would_be_too_long(serve, alice):
    port, mnt = serve
    os.makedirs(mnt / "a" / ("b" * 200) / ("c" * 200))
    r = subprocess.run(["mv", str(mnt / "a"), str(mnt / ("x" * 255))], capture_output=True)
    assert r.returncode != 0 and b"File name too long" in r.stderr, r.stderr
    with pytest.raises(OSError) as e:
        os.rename(mnt / "a", mnt / ("x" * 255))
    assert e.value.errno == errno.ENAMETOOLONG
    assert os.path.isdir(mnt / "a" / ("b" * 200) / ("c" * 200))
    c = imap(port)
    typ, data = c._simple_command("RENAME", "a", "y" * 255)
    assert typ == "NO" and data[-1].startswith(b"[LIMIT]"), (typ, data)
    c.logout()
    names = mailbox_counts(alice)
    assert "a" in names and f"a/{'b' * 200}/{'c' * 200}" in names and "y" * 255 not in names
