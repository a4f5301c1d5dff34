"""Issue 10: what a connection may do to the server; here first, the user name of --mount."""
from conftest import free_port


def test_mount_user_name_is_validated(alice, tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    r = alice.run("serve", "--imap", f"127.0.0.1:{free_port()}", "--mount",
                  f"bob,allow_other:{mnt}", check=False, timeout=20)
    assert r.returncode == 64, r
    assert b"bad --mount 'bob,allow_other:" in r.stderr, r.stderr
    assert b"'bob,allow_other' is not a valid user name" in r.stderr, r.stderr
    r = alice.run("mount", "-f", "bob,allow_other", str(mnt), check=False, timeout=20)
    assert r.returncode == 64, r
    assert b"bad user name 'bob,allow_other'" in r.stderr, r.stderr
