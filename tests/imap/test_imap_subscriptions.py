"""Subscriptions are a list of names, not a flag of a mailbox (RFC 3501 6.3.6-6.3.9, RFC 9051
6.3.7-6.3.8, RFC 5258): SUBSCRIBE of a name no mailbox has, DELETE keeping the subscription,
LSUB and LIST (SUBSCRIBED) showing such names, RENAME moving them, modified UTF-7 names."""
import re

from imapfix import expect, none_match, server  # noqa: F401 (fixture)


# what `mailfs user add` creates and subscribes
DEFAULTS = {"INBOX", "Drafts", "Sent", "Trash", "Junk", "Archive"}


def names(lines, kind="LIST", defaults=False):
    """{name: (attributes, extended data)} of the LIST or LSUB lines, the default mailboxes
    left out unless DEFAULTS."""
    out = {}
    for l in lines:
        m = re.fullmatch(r'\* %s \(([^)]*)\) "/" ("(?:[^"\\]|\\.)*"|\S+)(.*)' % kind, l)
        assert m, l
        name = m.group(2)
        if name.startswith('"'):
            name = name[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        if defaults or name not in DEFAULTS:
            out[name] = (m.group(1).split(), m.group(3).strip())
    return out


def test_a_new_user_has_the_default_mailboxes_subscribed(server):
    """Clients that show subscribed folders only (Thunderbird's default, mutt with
    imap_list_subscribed) would hide Sent, Drafts and Trash otherwise."""
    c = server.conn()
    assert names(c.ok('LSUB "" "*"'), "LSUB", defaults=True) == {
        n: ([], "") for n in DEFAULTS}
    got = names(c.ok('LIST (SUBSCRIBED) "" "*"'), defaults=True)
    assert set(got) == DEFAULTS and all("\\Subscribed" in a for a, _ in got.values()), got
    expect(c.ok('LIST (SUBSCRIBED) "" "Sent"'), r'\* LIST \(.*\\Sent.*\) "/" "?Sent"?')


def test_subscribe_a_name_no_mailbox_has(server):
    c = server.conn()
    c.ok("SUBSCRIBE nosuch")
    c.ok("SUBSCRIBE nosuch")  # already subscribed: OK (RFC 9051 6.3.7)
    # LSUB lists it; it cannot be selected, so \Noselect (RFC 3501 7.2.2)
    assert names(c.ok('LSUB "" "*"'), "LSUB") == {"nosuch": (["\\Noselect"], "")}
    # LIST (SUBSCRIBED): accurate attributes, \NonExistent \Subscribed (RFC 5258 3.1)
    got = names(c.ok('LIST (SUBSCRIBED) "" "*"'))
    assert set(got) == {"nosuch"}, got
    assert "\\NonExistent" in got["nosuch"][0] and "\\Subscribed" in got["nosuch"][0], got
    assert "\\HasChildren" not in got["nosuch"][0]
    # a plain LIST lists mailboxes only
    none_match(c.ok('LIST "" "*"'), r'.*nosuch.*')
    none_match(c.ok('LIST "" "*" RETURN (SUBSCRIBED)'), r'.*nosuch.*')
    c.no("SELECT nosuch", "NONEXISTENT")
    c.no('STATUS nosuch (MESSAGES)', "NONEXISTENT")
    # another session sees the same list
    d = server.conn()
    assert set(names(d.ok('LSUB "" "*"'), "LSUB")) == {"nosuch"}
    # CREATE gives the subscribed name a mailbox, and it shows as one
    c.ok("CREATE nosuch")
    assert names(c.ok('LSUB "" "*"'), "LSUB") == {"nosuch": ([], "")}
    got = names(c.ok('LIST (SUBSCRIBED) "" "*"'))
    assert "\\NonExistent" not in got["nosuch"][0] and "\\Subscribed" in got["nosuch"][0], got
    c.ok("UNSUBSCRIBE nosuch")
    c.ok("UNSUBSCRIBE nosuch")  # not subscribed: OK (RFC 9051 6.3.8)
    c.ok("UNSUBSCRIBE neverwas")
    assert names(c.ok('LSUB "" "*"'), "LSUB") == {}
    assert names(c.ok('LIST (SUBSCRIBED) "" "*"')) == {}


def test_delete_keeps_the_subscription(server):
    c = server.conn()
    c.ok("CREATE work/2025")
    c.ok("SUBSCRIBE work")
    c.ok("SUBSCRIBE work/2025")
    c.ok("DELETE work/2025")
    c.no("DELETE work/2025", "NONEXISTENT")
    # RFC 3501 6.3.6: the server MUST NOT remove the name from the list on its own
    got = names(c.ok('LSUB "" "*"'), "LSUB")
    assert got == {"work": ([], ""), "work/2025": (["\\Noselect"], "")}, got
    got = names(c.ok('LIST (SUBSCRIBED) "" "*" RETURN (CHILDREN)'))
    assert set(got) == {"work", "work/2025"}, got
    assert set(got["work"][0]) == {"\\HasNoChildren", "\\Subscribed"}, got
    assert "\\NonExistent" in got["work/2025"][0] and "\\Subscribed" in got["work/2025"][0]
    # RETURN (SUBSCRIBED) lists existing mailboxes only, with \Subscribed where it holds
    c.ok("CREATE plain")  # CREATE does not subscribe
    got = names(c.ok('LIST "" "*" RETURN (SUBSCRIBED)'))
    assert "work/2025" not in got and "\\Subscribed" in got["work"][0], got
    assert "\\Subscribed" not in got["plain"][0], got
    # the name comes back to life with a new mailbox of that name
    c.ok("CREATE work/2025")
    got = names(c.ok('LIST (SUBSCRIBED) "" "work/*"'))
    assert "\\NonExistent" not in got["work/2025"][0] and "\\Subscribed" in got["work/2025"][0]


def test_nonexistent_parents_lsub_percent_and_childinfo(server):
    c = server.conn()
    c.ok("SUBSCRIBE gone/child")
    # RFC 3501 6.3.9: '%' stops at gone, which is not subscribed: \Noselect
    assert names(c.ok('LSUB "" "%"'), "LSUB") == {"gone": (["\\Noselect"], "")}
    assert names(c.ok('LSUB "" "*"'), "LSUB") == {"gone/child": (["\\Noselect"], "")}
    assert names(c.ok('LIST (SUBSCRIBED) "" "%"')) == {}
    # RFC 5258 3.5: a parent that neither exists nor is subscribed: (\NonExistent) + CHILDINFO
    got = names(c.ok('LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"'))
    assert set(got) == {"gone"}, got
    assert "\\NonExistent" in got["gone"][0] and "\\Subscribed" not in got["gone"][0], got
    assert got["gone"][1] == '("CHILDINFO" ("SUBSCRIBED"))', got
    none_match(c.ok('LIST "" "*"'), r'.*gone.*')


def test_rename_moves_subscriptions(server):
    c = server.conn()
    c.ok("CREATE proj/a/b")
    for n in ["proj", "proj/a/b", "proj/gone", "projx"]:
        c.ok(f"SUBSCRIBE {n}")
    c.ok("RENAME proj done")
    got = names(c.ok('LSUB "" "*"'), "LSUB")
    # the renamed mailbox and everything below it, mailboxes or not, move; "projx" is no child
    assert got == {"done": ([], ""), "done/a/b": ([], ""), "done/gone": (["\\Noselect"], ""),
                   "projx": (["\\Noselect"], "")}, got
    got = names(c.ok('LIST (SUBSCRIBED) "" "done*"'))
    assert "\\NonExistent" not in got["done"][0] and "\\Subscribed" in got["done"][0], got
    # what RFC 9051 6.3.6 tells clients to do after a RENAME still works
    c.ok("SUBSCRIBE done")
    c.ok("UNSUBSCRIBE proj")
    assert set(names(c.ok('LSUB "" "*"'), "LSUB")) == {"done", "done/a/b", "done/gone", "projx"}
    # renaming INBOX moves its mail to a new mailbox, and the subscription with it; INBOX
    # itself (still there) keeps its own
    c.ok("SUBSCRIBE inbox")
    c.ok("RENAME INBOX old-mail")
    got = names(c.ok('LSUB "" "*"'), "LSUB", defaults=True)
    assert got["INBOX"] == ([], "") and got["old-mail"] == ([], ""), got
    # the store is consistent afterwards
    out = server.mailfs.run("check").stdout.decode()
    assert "is consistent" in out and " 11 subscriptions" in out, out  # 5 defaults besides


def test_modified_utf7_and_utf8_names(server):
    c = server.conn()  # IMAP4rev1: modified UTF-7
    c.ok('SUBSCRIBE "Entw&APw-rfe"')
    c.ok('SUBSCRIBE "Gr\u00fc\u00dfe"')  # well-formed UTF-8 is taken from any client
    c.no('SUBSCRIBE "bad&AGE-"', "CANNOT")  # 'a' must not be encoded
    c.no('UNSUBSCRIBE "bad&AOQ"', "CANNOT")  # unterminated
    got = names(c.ok('LSUB "" "*"'), "LSUB")
    assert set(got) == {"Entw&APw-rfe", "Gr&APwA3w-e"}, got
    got = names(c.ok('LIST (SUBSCRIBED) "" "Entw*"'))
    assert set(got) == {"Entw&APw-rfe"} and "\\NonExistent" in got["Entw&APw-rfe"][0], got
    d = server.conn()
    expect(d.ok("ENABLE UTF8=ACCEPT"), r"\* ENABLED UTF8=ACCEPT")
    got = names(d.ok('LSUB "" "*"'), "LSUB")
    assert set(got) == {"Entw\u00fcrfe", "Gr\u00fc\u00dfe"}, got
    d.ok('UNSUBSCRIBE "Entw\u00fcrfe"')
    assert set(names(c.ok('LSUB "" "*"'), "LSUB")) == {"Gr&APwA3w-e"}
    # the UTF-7 name and the UTF-8 name are one name: CREATE through one, listed through both
    c.ok('CREATE "Gr&APwA3w-e"')
    assert names(d.ok('LSUB "" "Gr*"'), "LSUB") == {"Gr\u00fc\u00dfe": ([], "")}


def test_subscribe_checks_and_normalizes_names(server):
    c = server.conn()
    for bad in ['"a//b"', '"a*"', '"a%b"', '"/x"', '"a/../b"']:
        c.no(f"SUBSCRIBE {bad}", "CANNOT")
        c.no(f"UNSUBSCRIBE {bad}", "CANNOT")
    c.ok("UNSUBSCRIBE iNBOX")  # subscribed by `user add`
    assert "INBOX" not in names(c.ok('LSUB "" "*"'), "LSUB", defaults=True)
    c.ok("SUBSCRIBE inBox")
    c.ok("SUBSCRIBE iNbOx/sub")
    c.ok('SUBSCRIBE "folder/"')  # a trailing delimiter names the folder itself, as in CREATE
    got = names(c.ok('LSUB "" "*"'), "LSUB", defaults=True)
    assert set(got) == DEFAULTS | {"INBOX/sub", "folder"}, got
    c.ok("UNSUBSCRIBE INBOX/SUB")  # INBOX is case-insensitive, the rest of the name is not
    assert "INBOX/sub" in names(c.ok('LSUB "" "*"'), "LSUB")
    c.ok("UNSUBSCRIBE inbox/sub")
    c.ok('UNSUBSCRIBE "folder/"')
    assert set(names(c.ok('LSUB "" "*"'), "LSUB", defaults=True)) == DEFAULTS
