"""The stream format: what the framer sends, the checker accepts in any chunking; any changed
byte is refused, by a running hash on the way or by the final hash the signature covers."""

from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from veil.inference.receipt import StreamFramer
from veil.inference.verify import StreamCheck, VerificationRefused

events = st.lists(
    st.text(min_size=0, max_size=30).map(
        lambda text: b"data: " + json.dumps({"choices": [{"delta": {"content": text}}]}).encode()
    ),
    min_size=1,
    max_size=12,
).map(lambda items: [*items, b"data: [DONE]"])


def _framed(items: list[bytes]) -> tuple[bytes, str]:
    framer = StreamFramer()
    body = b"".join(framer.frame(event) for event in items)
    return body, framer.hexdigest()


def _check(body: bytes, cuts: list[int]) -> tuple[bytes, str]:
    check = StreamCheck()
    out = []
    last = 0
    for cut in [*sorted(c % (len(body) + 1) for c in cuts), len(body)]:
        out.append(check.feed(body[last:cut]))
        last = max(last, cut)
    digest = check.finish()
    return b"".join(out) + check.pending, digest


@settings(max_examples=80, deadline=None)
@given(events, st.lists(st.integers(0, 10_000), max_size=8))
def test_any_chunking_passes_and_reproduces_the_signed_hash(
    items: list[bytes], cuts: list[int]
) -> None:
    body, signed_hash = _framed(items)
    delivered, digest = _check(body, cuts)
    assert delivered == body
    assert digest == signed_hash == hashlib.sha256(body).hexdigest()


@settings(max_examples=120, deadline=None)
@given(events, st.integers(0, 10**6), st.integers(1, 255))
def test_any_changed_byte_is_refused(items: list[bytes], where: int, xor: int) -> None:
    body, signed_hash = _framed(items)
    position = where % len(body)
    tampered = body[:position] + bytes([body[position] ^ xor]) + body[position + 1 :]
    try:
        _, digest = _check(tampered, [])
    except VerificationRefused as refusal:
        assert refusal.reason in ("response_tampered", "unsigned_response")
        return
    assert digest != signed_hash  # then the signature check refuses it


def test_a_stream_without_hashes_is_unsigned() -> None:
    check = StreamCheck()
    check.feed(b"data: {}\n\ndata: [DONE]\n\n")
    with pytest.raises(VerificationRefused) as caught:
        check.finish()
    assert caught.value.reason == "unsigned_response"
