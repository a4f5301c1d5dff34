"""The README's first command: tools/demo sets up, serves IMAP, mounts, prints the settings."""
import os
import subprocess

import pytest

from conftest import BUILD, ROOT, free_port



@pytest.mark.skipif(BUILD.resolve() != (ROOT / "build").resolve(),
                    reason="tools/demo runs the build in build/; this suite runs another build")
def test_demo_runs_and_stops(tmp_path):
    if not os.path.exists("/dev/fuse"):
        pytest.skip("/dev/fuse is absent")
    env = dict(os.environ, MAILFS_DEMO=str(tmp_path / "demo"),
               MAILFS_IMAP_PORT=str(free_port()), MAILFS_IMAPS_PORT=str(free_port()))
    demo = str(ROOT / "tools" / "demo")
    try:
        r = subprocess.run([demo], env=env, capture_output=True, timeout=600)
        out = r.stdout.decode()
        assert r.returncode == 0, out + r.stderr.decode()
        for want in ("server:     127.0.0.1", "STARTTLS", "SSL/TLS", "user name:  demo",
                     "password:   demo", "IMAP server: running", "(mounted)"):
            assert want in out, f"{want!r} missing from:\n{out}"
        inbox = tmp_path / "demo" / "Mail" / "INBOX"
        assert len(os.listdir(inbox)) == 200
        c = subprocess.run(["curl", "-sk", "--url",
                            f"imaps://127.0.0.1:{env['MAILFS_IMAPS_PORT']}/INBOX;UID=1",
                            "-u", "demo:demo"], capture_output=True, timeout=60)
        assert c.returncode == 0 and b"Message-ID:" in c.stdout
    finally:
        subprocess.run([demo, "stop"], env=env, capture_output=True, timeout=120)
    assert not os.path.ismount(tmp_path / "demo" / "Mail")
