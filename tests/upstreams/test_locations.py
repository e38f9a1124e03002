"""SwiftPM's canonical package locations, redaction and URL forms, row by row."""

from __future__ import annotations

import pytest

from upstreams.locations import (
    canonical_location,
    lookup_form,
    redact,
    scrub,
    split_location,
    ssh_form,
)

LINKED_LIST = "github.com/mona/linkedlist"


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        ("https://github.com/mona/LinkedList", LINKED_LIST),
        ("https://github.com/mona/LinkedList.git", LINKED_LIST),
        ("https://github.com/Mona/LinkedList.git/", LINKED_LIST),
        ("git@github.com:mona/LinkedList.git", LINKED_LIST),
        ("ssh://git@github.com/mona/LinkedList.git", LINKED_LIST),
        ("ssh://git@github.com:22/mona/LinkedList.git", LINKED_LIST),
        ("http://GitHub.com:443/mona/linkedlist", LINKED_LIST),
        ("https://user:secret@github.com/mona/LinkedList.git", LINKED_LIST),
        ("https://github.com/mona/LinkedList.git?ref=main", LINKED_LIST),
        ("https://github.com/mona/LinkedList#readme", LINKED_LIST),
        ("https://github.com//mona///LinkedList", LINKED_LIST),
        ("github.com/mona/LinkedList", LINKED_LIST),
        ("github.com:mona/LinkedList.git", LINKED_LIST),
        ("https://github.com/mona/Linked%4Cist", LINKED_LIST),
        ("https://github.com/mona/%E6%97%A5%E6%9C%AC", "github.com/mona/日本"),
        # NFC: a decomposed é equals the precomposed one.
        ("https://example.com/mona/Cafe\u0301", "example.com/mona/caf\u00e9"),
        ("https://example.com/mona/CAF\u00c9", "example.com/mona/caf\u00e9"),
        ("https://github.com/mona/LinkedList.git.git", "github.com/mona/linkedlist.git"),
        ("https://github.com/mona/git", "github.com/mona/git"),
        ("https://gitlab.com/group/sub/Repo.git", "gitlab.com/group/sub/repo"),
        ("file:///srv/git/LinkedList.git", "/srv/git/linkedlist"),
        ("/srv/git/LinkedList.git", "/srv/git/linkedlist"),
        ("ssh://mona@host.example/~/repo.git", "host.example/~mona/repo"),
        ("http://127.0.0.1:8080/mona/LinkedList.git", "127.0.0.1/mona/linkedlist"),
    ],
)
def test_canonical_location(url: str, canonical: str) -> None:
    assert canonical_location(url) == canonical


def test_split_location_keeps_case_and_drops_git_suffix() -> None:
    location = split_location("git@GitHub.com:groue/GRDB.swift.git")

    assert location.host == "GitHub.com"
    assert location.segments == ("groue", "GRDB.swift")


@pytest.mark.parametrize(
    ("url", "redacted"),
    [
        ("https://user:secret@github.com/mona/x.git", "https://github.com/mona/x.git"),
        ("https://token@github.com/mona/x.git", "https://github.com/mona/x.git"),
        ("https://github.com/mona/x.git", "https://github.com/mona/x.git"),
        ("ssh://git@github.com/mona/x.git", "ssh://github.com/mona/x.git"),
        ("user:secret@github.com:mona/x.git", "github.com:mona/x.git"),
        ("http://u:p@127.0.0.1:80/a@b/x.git", "http://127.0.0.1:80/a@b/x.git"),
    ],
)
def test_redact(url: str, redacted: str) -> None:
    assert redact(url) == redacted


def test_scrub_removes_credentials_inside_text() -> None:
    message = "cannot reach https://user:secret@host/x.git: refused"
    assert scrub(message) == "cannot reach https://host/x.git: refused"


@pytest.mark.parametrize(
    ("url", "ssh"),
    [
        ("https://github.com/mona/LinkedList.git", "git@github.com:mona/LinkedList.git"),
        ("https://github.com/mona/LinkedList", "git@github.com:mona/LinkedList.git"),
        ("https://u:p@github.com:443/mona/LinkedList/", "git@github.com:mona/LinkedList.git"),
        ("http://127.0.0.1:8080/mona/LinkedList.git", "git@127.0.0.1:mona/LinkedList.git"),
        ("ssh://git@github.com/mona/LinkedList.git", None),
        ("git@github.com:mona/LinkedList.git", None),
        ("https://github.com", None),
    ],
)
def test_ssh_form(url: str, ssh: str | None) -> None:
    assert ssh_form(url) == ssh


@pytest.mark.parametrize(
    ("url", "sent"),
    [
        # What SwiftPM sends goes out as written...
        ("https://github.com/mona/LinkedList.git", "https://github.com/mona/LinkedList.git"),
        ("HTTP://GitHub.com:8080/Mona/x/", "HTTP://GitHub.com:8080/Mona/x/"),
        ("https://[::1]/mona/x", "https://[::1]/mona/x"),
        ("ssh://git@github.com/mona/x.git", "ssh://git@github.com/mona/x.git"),
        ("git@github.com:mona/LinkedList.git", "git@github.com:mona/LinkedList.git"),
        # ...without credentials; an ssh login name is not one.
        ("https://user:secret@github.com/mona/x.git", "https://github.com/mona/x.git"),
        ("https://ghp_t0ken@github.com/mona/x.git", "https://github.com/mona/x.git"),
        ("https://a@b@github.com/mona/x", "https://github.com/mona/x"),
        ("ssh://git:secret@github.com:2222/mona/x.git", "ssh://git@github.com:2222/mona/x.git"),
        ("git:secret@github.com:mona/x.git", "git@github.com:mona/x.git"),
        # Anything else is nothing a registry maps to a package.
        ("file:///etc/passwd", None),
        ("/srv/repos/x.git", None),
        ("../x", None),
        ("github.com:mona/x.git", None),
        ("ftp://github.com/mona/x", None),
        ("javascript:alert(1)", None),
        ("https://github.com", None),
        ("https://github.com/", None),
        ("https://github.com:port/mona/x", None),
        ("https://[::1/mona/x", None),
        ("https://git hub.com/mona/x", None),
        ("https://github.com/mona/x\nX-Injected: 1", None),
        ("https://evil.example\\@github.com/mona/x", None),
        ("git@github.com:", None),
        ("", None),
    ],
)
def test_lookup_form(url: str, sent: str | None) -> None:
    assert lookup_form(url) == sent
