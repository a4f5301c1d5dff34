"""Across views: `mailfs serve --mount` shows the same mail over IMAP and as files."""
import os
import shutil
import subprocess
import time

import pytest

from imapfix import start_server, stop_server

pytestmark = pytest.mark.skipif(not os.path.exists("/dev/fuse") or not shutil.which("fusermount3"),
                                reason="FUSE is not available")


def test_cp_into_mount_pushes_exists_and_expunge_removes_file(alice, tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    srv = start_server(alice, extra=("--mount", f"alice:{mnt}"))
    try:
        deadline = time.time() + 5
        while not (mnt / "INBOX").is_dir():
            assert time.time() < deadline, "the mount did not appear"
            time.sleep(0.02)
        c = srv.conn(select="INBOX")
        c.send("i IDLE\r\n")
        assert c.line().startswith("+")
        src = tmp_path / "m.eml"
        src.write_bytes(b"From: a@example.com\nSubject: copied in\n\nhello\n")
        subprocess.run(["cp", str(src), str(mnt / "INBOX" / "m.eml")], check=True)
        t1 = time.monotonic()
        assert c.line(timeout=5) == "* 1 EXISTS"
        assert time.monotonic() - t1 < 0.5  # pushed, not polled
        c.line()  # * 1 RECENT
        c.send("DONE\r\n")
        assert c.line().startswith("i OK")
        u = c.ok("FETCH 1 BODY.PEEK[HEADER.FIELDS (SUBJECT)]")
        assert "Subject: copied in" in u[0]
        c.ok("STORE 1 +FLAGS (\\Deleted)")
        u = c.ok("EXPUNGE")
        assert "* 1 EXPUNGE" in u
        deadline = time.time() + 2
        while os.listdir(mnt / "INBOX"):
            assert time.time() < deadline, os.listdir(mnt / "INBOX")
            time.sleep(0.02)
    finally:
        stop_server(srv)
    # SIGTERM unmounts too
    with open("/proc/self/mountinfo") as f:
        assert str(mnt) not in f.read()
