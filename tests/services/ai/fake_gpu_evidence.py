"""Stands in for nvtrust's verifier: prints an H100 claim set for the nonce given (argv[1])."""

import json
import sys

claims = {
    "hwmodel": "GH100 A01 GSP BROM",
    "measres": "success",
    "secboot": True,
    "dbgstat": "disabled",
    "eat_nonce": sys.argv[1],
    "ueid": "4711",
    "x-nvidia-gpu-attestation-report-signature-verified": True,
    "x-nvidia-gpu-attestation-report-nonce-match": True,
}
print(json.dumps({"result_code": 0, "claims": [claims]}))
