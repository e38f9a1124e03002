"""The offline workflow's inputs, for any content at all.

`Package.resolved` files and package specs (`warm`, `export`) give pins or a
`SelectionError`.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from proxy.offline.selection import (
    RegistryPin,
    SelectionError,
    SkippedPin,
    SourceControlPin,
    parse_package_spec,
    parse_resolved,
)
from tests.properties.strategies import hostile, hostile_bytes, names, scopes, semantic_versions
from tests.properties.test_upstream_documents import json_values
from upstreams.model import PackageId, Version

# -- Package.resolved and package specs ---------------------------------------------

pins_v2 = st.fixed_dictionaries(
    {
        "identity": st.one_of(hostile(st.just("mona.LinkedList")), json_values),
        "kind": st.sampled_from(["registry", "remoteSourceControl", "localSourceControl", 5]),
        "location": st.one_of(hostile(st.just("https://github.com/mona/x.git")), json_values),
        "state": st.one_of(
            json_values, st.fixed_dictionaries({"version": hostile(semantic_versions())})
        ),
    }
)
resolved_documents = st.one_of(
    json_values,
    st.builds(lambda pins: {"version": 2, "pins": pins}, st.lists(pins_v2, max_size=3)),
    st.builds(lambda pins: {"version": 3, "pins": pins}, st.one_of(json_values, st.lists(pins_v2))),
    st.builds(
        lambda pins: {"version": 1, "object": {"pins": pins}},
        st.one_of(json_values, st.lists(st.dictionaries(st.text(max_size=14), json_values))),
    ),
    st.builds(lambda objects: {"version": 1, "object": objects}, json_values),
)


@given(
    st.one_of(
        hostile_bytes,
        resolved_documents.map(lambda doc: json.dumps(doc).encode("utf-8", "surrogatepass")),
    )
)
@example(b'{"version": 1, "object": []}')
@example(b'{"version": 2, "pins": [5]}')
@example(b'{"version": 2, "pins": [{"kind": "remoteSourceControl", "state": {"version": 1}}]}')
@example(b'{"version": 1, "object": {"pins": [{"state": {"version": "1.0.0"}}]}}')
@example(b"[" * 5000)
def test_package_resolved_files(tmp_path_factory: pytest.TempPathFactory, content: bytes) -> None:
    path = tmp_path_factory.mktemp("resolved") / "Package.resolved"
    path.write_bytes(content)
    try:
        pins = parse_resolved(path)
    except SelectionError as error:
        message = str(error)
        pins = []
    else:
        message = str(path)
    assert str(path) in message
    for pin in pins:
        if isinstance(pin, RegistryPin):
            assert isinstance(pin.package, PackageId)
            assert isinstance(pin.version, Version)
        elif isinstance(pin, SourceControlPin):
            assert isinstance(pin.url, str)
            assert isinstance(pin.version, Version)
        else:
            assert isinstance(pin, SkippedPin)
            assert isinstance(pin.name, str)
            assert isinstance(pin.reason, str)


specs = st.builds(
    lambda scope, name, versions: f"{scope}.{name}{versions}",
    scopes,
    names,
    st.one_of(
        st.just(""),
        semantic_versions().map(lambda v: "@" + v),
        semantic_versions().map(lambda v: "@from:" + v),
        st.tuples(semantic_versions(), semantic_versions()).map(lambda r: f"@{r[0]}..<{r[1]}"),
    ),
)


@given(hostile(specs))
@example("mona.LinkedList@from:" + "9" * 19 + ".0.0")  # its next major is past Int
def test_package_specs(text: str) -> None:
    try:
        spec = parse_package_spec(text)
    except SelectionError:
        return
    assert isinstance(spec.package, PackageId)
