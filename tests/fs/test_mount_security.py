"""What the mount refuses, and how (issue 10: the mount's Low items).

- `user.mail.flags` is taken whole or refused (EINVAL), never cut at a NUL.
- A folder rename whose children's names would pass 500 bytes is ENAMETOOLONG on the mount and
  `NO [LIMIT]` over IMAP.

Every test mounts for real (the fixtures of test_mount.py and test_mount_imap.py).
"""
import errno
import os
import subprocess

import pytest

from test_mount import SAMPLE, fuse, mailbox_counts, mount  # noqa: F401 (fixtures)
from test_mount_imap import imap, serve  # noqa: F401 (fixture)


# ---- flags are taken whole ------------------------------------------------------------------

def test_flags_with_a_nul_or_a_bad_keyword_are_refused(mount):
    mnt = mount()
    p = mnt / "INBOX" / "f.eml"
    p.write_bytes(SAMPLE)
    os.setxattr(p, "user.mail.flags", b"\\Flagged $Work")
    for value in (b"\\Seen\0$Evil", b"\\Seen\0\0", b"\0\\Seen", b"a\\b", b"k" * 201,
                  b" ".join(b"k%04d" % i for i in range(400))):
        with pytest.raises(OSError) as e:
            os.setxattr(p, "user.mail.flags", value)
        assert e.value.errno == errno.EINVAL, value[:40]
        assert os.getxattr(p, "user.mail.flags") == b"\\Flagged $Work"
    os.setxattr(p, "user.mail.flags", b"\\Seen $Ok\0")  # a C string's terminator is no part
    assert os.getxattr(p, "user.mail.flags") == b"\\Seen $Ok"


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
