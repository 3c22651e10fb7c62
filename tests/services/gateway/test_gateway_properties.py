"""Properties of the gateway's routing and header handling, over generated input."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from veil.services.gateway.proxy import HOP_BY_HOP, GatewayError, _strip_hop_by_hop, parse_target

hex40 = st.text(alphabet="0123456789abcdefABCDEF", min_size=40, max_size=40)
ports = st.integers(min_value=1, max_value=65535)
segments = st.lists(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_.~%", min_size=1, max_size=12),
    max_size=4,
)
queries = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789=&", max_size=20)


def _scope(path: str, query: str = "", host: str = "gw.test") -> dict:
    return {
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "headers": [(b"host", host.encode())],
    }


@given(hex40, ports, segments, queries, st.booleans())
def test_path_routing_finds_the_app_port_and_rest(app, port, parts, query, prefixed):
    rest = "/" + "/".join(parts) if parts else ""
    path = f"/apps/{'0x' if prefixed else ''}{app}/{port}{rest}"
    target = parse_target(_scope(path, query), domain="apps.test")
    assert target.app_id == "0x" + app.lower() and target.port == port
    assert target.path == (rest or "/") + (f"?{query}" if query else "")


@given(hex40, ports, segments, queries)
def test_host_routing_keeps_the_whole_path(app, port, parts, query):
    path = "/" + "/".join(parts)
    scope = _scope(path, query, host=f"{app}-{port}.Apps.Test:8443")
    target = parse_target(scope, domain="apps.test")
    assert (target.app_id, target.port) == ("0x" + app.lower(), port)
    assert target.path == path + (f"?{query}" if query else "")


@given(st.text(max_size=60))
def test_anything_else_is_a_404_not_a_crash(path):
    try:
        parse_target(_scope("/" + path), domain=None)
    except GatewayError as error:
        assert error.status == 404 and error.code == "no_route"


header_names = st.sampled_from(
    [*sorted(HOP_BY_HOP), "x-one", "x-two", "content-type", "content-length", "Keep-Alive"]
)


@given(st.lists(st.tuples(header_names, st.text(alphabet="abc", max_size=5)), max_size=12),
       st.lists(st.sampled_from(["x-one", "x-two", "content-type"]), max_size=3))  # fmt: skip
def test_hop_by_hop_headers_never_cross(headers, listed):
    raw = [(name.encode(), value.encode()) for name, value in headers]
    if listed:
        raw.append((b"connection", ", ".join(listed).encode()))
    kept = _strip_hop_by_hop(raw)
    names = {name.lower().decode() for name, _ in kept}
    assert not names & HOP_BY_HOP and not names & set(listed)
    assert [h for h in raw if h in kept] == kept  # order kept, nothing invented
    assert all(h in kept for h in raw if h[0].lower().decode() not in HOP_BY_HOP | set(listed))
