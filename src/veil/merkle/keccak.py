"""Keccak-256 (Ethereum's, not SHA3) fast enough for a million-leaf Merkle tree.

`Crypto.Hash.keccak.new(...)` costs ~5 us a call, almost all of it Python object set-up;
a tree of n leaves needs 3n hashes. Driving pycryptodome's compiled Keccak directly on
one reusable state costs ~2 us. Such a hasher owns mutable C state, so it is not
thread-safe: each bulk job asks `new_hasher()` for its own. If that private entry point
ever moves, the public API is used instead: slower, same result.
"""

from __future__ import annotations

from collections.abc import Callable

# pycryptodome is imported on first use: with its cffi backend, loading it parses C
# declarations (~0.05 s), which commands that hash nothing (`--help`) should not pay.


def _public_keccak256(data: bytes) -> bytes:
    from Crypto.Hash import keccak as _keccak_module

    return _keccak_module.new(data=data, digest_bits=256).digest()


def _fast_hasher(double: bool = False) -> Callable[[bytes], bytes] | None:
    try:
        from Crypto.Hash import keccak as _keccak_module
        from Crypto.Util._raw_api import (  # type: ignore[attr-defined]
            VoidPointer,
            c_size_t,
            c_ubyte,
            create_string_buffer,
        )

        lib = _keccak_module._raw_keccak_lib  # type: ignore[attr-defined]
        holder = VoidPointer()
        if lib.keccak_init(holder.address_of(), c_size_t(64), c_ubyte(24)):
            return None
        state = holder.get()
        out = create_string_buffer(32)  # type: ignore[call-arg]
        reset, absorb, digest = lib.keccak_reset, lib.keccak_absorb, lib.keccak_digest
        try:  # cffi backend: a buffer view copies the 32 bytes out in one step
            from Crypto.Util._raw_api import ffi

            view = ffi.buffer(out)
        except (ImportError, AttributeError, TypeError):  # ctypes backend
            view = None
    except (AttributeError, ImportError, OSError):
        return None

    if view is not None and double:

        def keccak256(data: bytes) -> bytes:
            reset(state)
            absorb(state, data, len(data))
            digest(state, out, 32, 1)
            reset(state)
            absorb(state, out, 32)  # the first digest is hashed where it lies
            digest(state, out, 32, 1)
            return view[:]  # type: ignore[no-any-return]

    elif view is not None:

        def keccak256(data: bytes) -> bytes:
            reset(state)
            absorb(state, data, len(data))
            digest(state, out, 32, 1)
            return view[:]  # type: ignore[no-any-return]

    else:

        def keccak256(data: bytes) -> bytes:
            reset(state)
            absorb(state, data, len(data))
            digest(state, out, 32, 1)
            return bytes(out.raw)

    keccak256._holder = holder  # type: ignore[attr-defined]  # keeps the C state alive
    for sample in (b"", b"veil" * 50, b"\1" * 128):
        expected = _public_keccak256(sample)
        if double:
            expected = _public_keccak256(expected)
        if keccak256(sample) != expected:  # (double without cffi: the single one, refused)
            return None
    return keccak256


def keccak256(data: bytes) -> bytes:
    """Thread-safe one-off Keccak-256."""
    return _public_keccak256(data)


def _public_double(data: bytes) -> bytes:
    return _public_keccak256(_public_keccak256(data))


def new_hasher() -> Callable[[bytes], bytes]:
    """A Keccak-256 function for one thread's bulk work (fast path when available)."""
    return _fast_hasher() or _public_keccak256


def new_double_hasher() -> Callable[[bytes], bytes]:
    """keccak256(keccak256(data)) in one call, as a Merkle leaf hashes its encoding."""
    return _fast_hasher(double=True) or _public_double
