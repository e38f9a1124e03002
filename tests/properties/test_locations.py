"""Repository locations, origins and URL templates, for any text at all.

`/identifiers` takes a repository URL as the client wrote it (SE-0292 4.5),
so SwiftPM's canonical form, redaction and the forms forwarded upstream must
be total; configured download hosts (RFC 6454 origins) and git URL templates
are parsed once and then matched against whatever clients send.
"""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from tests.properties.strategies import hostile
from upstreams.git.naming import RepositoryTemplate
from upstreams.locations import (
    canonical_location,
    lookup_form,
    redact,
    scrub,
    split_location,
    ssh_form,
)
from upstreams.model import PackageId
from upstreams.registry.origins import Origin

repository_urls = hostile(
    st.sampled_from(
        [
            "https://github.com/mona/LinkedList.git",
            "ssh://git@github.com:22/mona/LinkedList.git",
            "git@github.com:mona/LinkedList.git",
            "https://user:secret@git.example.com:8443/Mona/Linked%4Cist/",
            "file:///srv/git/mona/LinkedList.git",
            "https://[::1]:8080/mona/LinkedList",
        ]
    )
)


@given(repository_urls)
@example("https://[::1")
def test_canonical_locations(url: str) -> None:
    canonical = canonical_location(url)
    assert canonical == split_location(url).canonical
    assert canonical == canonical.lower()


def test_a_port_is_ascii_digits() -> None:
    # RFC 3986 3.2.3: ARABIC-INDIC DIGIT FIVE is no port digit, so it is not dropped.
    assert canonical_location("https://github.com:\u0665/mona/x") == "github.com:\u0665/mona/x"
    assert canonical_location("https://github.com:5/mona/x") == "github.com/mona/x"


@given(repository_urls)
def test_lookup_forms(url: str) -> None:
    forwarded = lookup_form(url)
    if forwarded is None:
        return
    assert forwarded
    assert not any(char.isspace() or not char.isprintable() for char in forwarded)
    # Credentials never go out; an ssh login name may (`git@host:...` is how
    # repository URLs are published).
    assert ":secret@" not in forwarded


# Userinfo as clients write it, unencoded characters included (but the `/`, `?`
# and `#` that end an authority); the marker must never reach a log line.
_AUTHORITY_END = str.maketrans("/?#", "___")
userinfo = st.builds(
    lambda user, password: f"{user}:S3CR3T{password}",
    st.text(max_size=8).map(lambda text: text.replace("S3CR3T", "").translate(_AUTHORITY_END)),
    st.text(max_size=8).map(lambda text: text.translate(_AUTHORITY_END)),
)


@given(st.sampled_from(["https://", "ssh://", "http://", ""]), userinfo, repository_urls)
@example("https://", "user:S3CR3Tp@ss", "github.com/mona/x.git")  # `@` in the password
@example("https://", "us er:S3CR3T", "github.com/mona/x.git")
def test_redaction(scheme: str, credentials: str, rest: str) -> None:
    host_and_path = rest.partition("://")[2] or rest
    if set(host_and_path[:1]) & set("/?#@") or "S3CR3T" in host_and_path:
        return
    url = f"{scheme}{credentials}@{host_and_path}"
    assert "S3CR3T" not in redact(url)
    assert isinstance(scrub(url), str)
    form = ssh_form(url)
    assert form is None or form.startswith("git@")


origins = hostile(
    st.sampled_from(
        [
            "https://cdn.example.com",
            "https://objects.example.com:8443",
            "https://*.cloudfront.net",
            "http://minio.internal:9000",
            "cdn.example.com",
            "https://[::1]:8443",
        ]
    )
)


@given(origins)
@example("https://cdn.example.com:99999999999999999999999")
@example(".")  # a host that is nothing once its trailing dot goes
@example("https://*.\u0665\u0665")
def test_origins_round_trip(text: str) -> None:
    try:
        origin = Origin.parse(text)
    except ValueError:
        return
    assert Origin.parse(str(origin)) == origin


# Templates whose placeholders are told apart by the text between them.
SEPARATED_TEMPLATES = [
    "https://github.com/{scope}/{name}.git",
    "ssh://git@git.example.com/{scope}/{name}",
    "https://git.example.com/{name}-{name}/{scope}.git",
    "https://git.example.com/{scope}/{name}-{name}.git",
]
templates = hostile(st.sampled_from([*SEPARATED_TEMPLATES, "https://h/{scope}{name}.git"]))


@given(templates, repository_urls)
@example("https://git.example.com/{scope}/{name}-{name}.git", "https://git.example.com/a/b-b.git")
def test_url_templates(template: str, url: str) -> None:
    """A template with every placeholder matches what it renders, and anything
    else without raising; a placeholder may appear more than once."""
    repository_template = RepositoryTemplate(template)
    matched = repository_template.match(url)
    assert matched is None or all(isinstance(part, str) for part in matched)
    found = repository_template.identity_for(url)
    assert found is None or isinstance(found[0], PackageId)
    if template in SEPARATED_TEMPLATES:
        rendered = repository_template.render("mona", "LinkedList")
        assert repository_template.match(rendered) == ("mona", "LinkedList")
