"""Produces tests/cloud/vectors/envcrypt_py.json with dstack-sdk 0.5.4 (PyPI), the Python
SDK's own encrypt_env_vars_sync, with its two random draws pinned so the output is
reproducible: the ephemeral X25519 private key and the 12-byte IV.

Run in a separate virtualenv: pip install dstack-sdk==0.5.4 && python make_py_vector.py
"""

import importlib
import json
from importlib.metadata import version

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

sdk = importlib.import_module("dstack_sdk.encrypt_env_vars")

RECIPIENT = bytes.fromhex("5f" * 16 + "c3" * 16)
EPHEMERAL = bytes.fromhex("0f1e2d3c4b5a69788796a5b4c3d2e1f0" * 2)
IV = bytes.fromhex("f0e0d0c0b0a0908070605040")
ENVS = [
    sdk.EnvVar(key="OPENAI_API_KEY", value="sk-proj-abc"),
    sdk.EnvVar(key="MODE", value='quoted "value" with\nnewline'),
    sdk.EnvVar(key="UNICODE", value="Grüße 🚀"),
]


class _PinnedKey:
    @staticmethod
    def generate():
        return X25519PrivateKey.from_private_bytes(EPHEMERAL)


sdk.X25519PrivateKey = _PinnedKey
sdk.secrets.token_bytes = lambda n: IV if n == 12 else bytes(n)

public = X25519PrivateKey.from_private_bytes(RECIPIENT).public_key()
public_hex = public.public_bytes(Encoding.Raw, PublicFormat.Raw).hex()
print(
    json.dumps(
        {
            "source": f"dstack-sdk {version('dstack-sdk')} (PyPI) encrypt_env_vars_sync;"
            " ephemeral key and IV pinned by tests/cloud/vectors/make_py_vector.py",
            "recipient_private_key": RECIPIENT.hex(),
            "recipient_public_key": public_hex,
            "ephemeral_private_key": EPHEMERAL.hex(),
            "iv": IV.hex(),
            "env": [{"key": e.key, "value": e.value} for e in ENVS],
            "encrypted": sdk.encrypt_env_vars_sync(ENVS, public_hex),
        },
        indent=2,
        ensure_ascii=False,
    )
)
