"""Intel collateral: load it, judge its freshness, fetch it from a PCCS and cache it per FMSPC.

Collateral (TCB info, QE identity, CRLs and their issuer chains) is what a quote is
verified against; it is signed by Intel and expires (TCB info and QE identity carry a
`nextUpdate`, CRLs too). Old collateral can hide a revocation or a TCB recovery, so this
module never hands out collateral past its expiry: the cache refetches, and a failed
fetch is an error, not a silent fallback to the stale copy.

The fetch speaks the Intel PCS v4 API (also served by a PCCS):
`{base}/sgx/certification/v4/pckcrl?ca=...`, `{base}/{tdx|sgx}/certification/v4/tcb?fmspc=...`,
`{base}/{tdx|sgx}/certification/v4/qe/identity` and the root CA CRL at
`{base}/sgx/certification/v4/rootcacrl` (a PCCS endpoint; pass `root_ca_crl_url` for
Intel's own PCS, whose root CRL lives on certificates.trustedservices.intel.com).
"""

from __future__ import annotations

import json
import os
import re
import urllib.parse
from calendar import timegm
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import dcap_qvl

from veil.atomic import write_json
from veil.errors import InputError, VeilError
from veil.tee.document import json_document

_FIELDS = (
    "pck_crl_issuer_chain",
    "root_ca_crl",
    "pck_crl",
    "tcb_info_issuer_chain",
    "tcb_info",
    "tcb_info_signature",
    "qe_identity_issuer_chain",
    "qe_identity",
    "qe_identity_signature",
)


class CollateralError(VeilError):
    """Collateral could not be obtained fresh (fetch failed, or what came back is stale)."""


@dataclass(frozen=True)
class Collateral:
    """dcap-qvl's collateral object plus the dates that decide whether it may still be used."""

    inner: dcap_qvl.QuoteCollateralV3
    fmspc: str
    tee: str
    issued: int
    expires: int
    crl_next_update: int | None

    def to_json(self) -> str:
        return str(self.inner.to_json())


def _iso(value: str) -> int:
    return timegm(datetime.fromisoformat(value.replace("Z", "+00:00")).utctimetuple())


def iso_time(unix: int) -> str:
    return datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _der_item(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of content, end of content) of the DER item at pos."""
    tag = data[pos]
    length = data[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    return tag, pos, pos + length


def _der_time(tag: int, text: bytes) -> int:
    value = text.decode()
    fmt = "%y%m%d%H%M%SZ" if tag == 0x17 else "%Y%m%d%H%M%SZ"
    return timegm(datetime.strptime(value, fmt).utctimetuple())


def crl_next_update(der: bytes) -> int | None:
    """The nextUpdate of a DER X.509 CRL (unix seconds), read without an ASN.1 library."""
    try:
        _, outer, _ = _der_item(der, 0)  # CertificateList
        _, pos, end = _der_item(der, outer)  # TBSCertList
        times: list[int] = []
        while pos < end and len(times) < 2:
            tag, start, stop = _der_item(der, pos)
            if tag in (0x17, 0x18):
                times.append(_der_time(tag, der[start:stop]))
            pos = stop
    except (IndexError, ValueError):
        return None
    return times[1] if len(times) == 2 else None


def from_json_text(text: str, name: str = "collateral") -> Collateral:
    """Build collateral from dcap-qvl's JSON form; one clear line for anything malformed."""
    data = json_document(text, name)
    if not isinstance(data, dict):
        raise InputError(f"{name}: expected a JSON object of collateral fields")
    missing = [field for field in _FIELDS if field not in data]
    if missing:
        raise InputError(f"{name}: missing collateral field(s) {', '.join(missing)}")
    try:
        tcb = json.loads(data["tcb_info"])
        qe = json.loads(data["qe_identity"])
        issued = min(_iso(tcb["issueDate"]), _iso(qe["issueDate"]))
        expires = min(_iso(tcb["nextUpdate"]), _iso(qe["nextUpdate"]))
        fmspc = str(tcb["fmspc"]).upper()
        tee = "tdx" if str(tcb.get("id", "")).upper() == "TDX" else "sgx"
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise InputError(f"{name}: tcb_info/qe_identity unreadable ({error})") from None
    try:
        inner = dcap_qvl.QuoteCollateralV3.from_json(json.dumps(data))
    except (ValueError, RuntimeError) as error:
        raise InputError(f"{name}: rejected by dcap-qvl ({str(error).strip()})") from None
    crl_dates = []
    for field in ("pck_crl", "root_ca_crl"):
        try:
            date = crl_next_update(bytes.fromhex(data[field]))
        except (ValueError, TypeError):
            date = None
        if date is not None:
            crl_dates.append(date)
    crl = min(crl_dates) if crl_dates else None
    if crl is not None:
        expires = min(expires, crl)
    return Collateral(inner, fmspc, tee, issued, expires, crl)


def load_collateral(path: str | os.PathLike[str]) -> Collateral:
    """Read a collateral JSON file (dcap-qvl's format, as the fixtures and the cache hold it)."""
    file = Path(path)
    try:
        text = file.read_text()
    except OSError as error:
        raise InputError(f"collateral {file}: cannot read ({error.strerror})") from None
    except UnicodeDecodeError:
        raise InputError(f"collateral {file}: not text (expected JSON)") from None
    return from_json_text(text, f"collateral {file}")


def freshness_problems(collateral: Collateral, now: int, max_age: int | None) -> list[str]:
    """Refusal reasons for collateral that is expired or older than the policy allows."""
    problems: list[str] = []
    if now >= collateral.expires:
        problems.append(
            f"collateral stale: expired at {iso_time(collateral.expires)} "
            f"(now {iso_time(now)}); fetch fresh collateral"
        )
    if now < collateral.issued:
        problems.append(
            f"collateral not yet valid: issued {iso_time(collateral.issued)} after now"
            f" {iso_time(now)}"
        )
    elif max_age is not None and now - collateral.issued > max_age:
        problems.append(
            f"collateral too old: issued {iso_time(collateral.issued)}, "
            f"{now - collateral.issued} s ago, policy allows {max_age} s"
        )
    return problems


# --- PCCS fetch and per-FMSPC cache -------------------------------------------------------


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "veil" / "collateral"


def _get(url: str, timeout: float) -> tuple[bytes, dict[str, str]]:
    import urllib.error  # urllib.request takes ~0.05 s to import; `--help` should not pay it
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.read(), {k.lower(): v for k, v in response.headers.items()}
    except urllib.error.HTTPError as error:
        raise CollateralError(f"PCCS {url}: HTTP {error.code}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise CollateralError(f"PCCS {url}: unreachable ({reason})") from None


def _chain(headers: dict[str, str], *names: str) -> str:
    for name in names:
        if name.lower() in headers:
            return urllib.parse.unquote(headers[name.lower()])
    raise CollateralError(f"PCCS response lacks the {names[0]} header")


def _crl_bytes(body: bytes) -> bytes:
    """PCS serves DER or PEM, a PCCS often hex text; all become DER bytes."""
    text = body.strip()
    if text.startswith(b"-----BEGIN"):
        import base64

        inner = b"".join(line for line in text.splitlines() if not line.startswith(b"-----"))
        return base64.b64decode(inner)
    if re.fullmatch(rb"[0-9a-fA-F]+", text):
        return bytes.fromhex(text.decode())
    return body


def _signed_json(body: bytes, key: str, url: str) -> tuple[str, str]:
    """The signed object's exact text (the signature covers those bytes) and the signature."""
    text = body.decode()
    match = re.search(r'"' + key + r'"\s*:\s*', text)
    if not match:
        raise CollateralError(f"PCCS {url}: response has no {key}")
    try:
        _, end = json.JSONDecoder().raw_decode(text, match.end())
        signature = json.loads(text)["signature"]
    except (json.JSONDecodeError, KeyError) as error:
        raise CollateralError(f"PCCS {url}: unreadable response ({error})") from None
    return text[match.end() : end], str(signature)


def fetch_collateral(
    pccs_url: str,
    fmspc: str,
    *,
    tee: str = "tdx",
    ca: str = "platform",
    root_ca_crl_url: str | None = None,
    timeout: float = 10.0,
) -> str:
    """Fetch collateral for one FMSPC from a PCCS / PCS; returns dcap-qvl's JSON form."""
    base = pccs_url.rstrip("/")
    kind = "tdx" if tee == "tdx" else "sgx"
    pck_url = f"{base}/sgx/certification/v4/pckcrl?ca={ca}&encoding=der"
    pck_body, pck_headers = _get(pck_url, timeout)
    tcb_url = f"{base}/{kind}/certification/v4/tcb?fmspc={fmspc}"
    tcb_body, tcb_headers = _get(tcb_url, timeout)
    qe_url = f"{base}/{kind}/certification/v4/qe/identity"
    qe_body, qe_headers = _get(qe_url, timeout)
    root_url = root_ca_crl_url or f"{base}/sgx/certification/v4/rootcacrl"
    root_body, _ = _get(root_url, timeout)
    tcb_info, tcb_sig = _signed_json(tcb_body, "tcbInfo", tcb_url)
    qe_identity, qe_sig = _signed_json(qe_body, "enclaveIdentity", qe_url)
    return json.dumps(
        {
            "pck_crl_issuer_chain": _chain(pck_headers, "SGX-PCK-CRL-Issuer-Chain"),
            "root_ca_crl": _crl_bytes(root_body).hex(),
            "pck_crl": _crl_bytes(pck_body).hex(),
            "tcb_info_issuer_chain": _chain(
                tcb_headers, "TCB-Info-Issuer-Chain", "SGX-TCB-Info-Issuer-Chain"
            ),
            "tcb_info": tcb_info,
            "tcb_info_signature": tcb_sig,
            "qe_identity_issuer_chain": _chain(qe_headers, "SGX-Enclave-Identity-Issuer-Chain"),
            "qe_identity": qe_identity,
            "qe_identity_signature": qe_sig,
        }
    )


@dataclass(frozen=True)
class CollateralCache:
    """Collateral per (TEE, FMSPC, CA) on disk, reused only until its earliest expiry."""

    directory: Path
    pccs_url: str
    root_ca_crl_url: str | None = None
    timeout: float = 10.0

    def path(self, tee: str, fmspc: str, ca: str) -> Path:
        return self.directory / f"{tee}-{fmspc.upper()}-{ca}.json"

    def get(self, fmspc: str, now: int, *, tee: str = "tdx", ca: str = "platform") -> Collateral:
        """Cached collateral if still fresh at `now`, else a fresh fetch (stored atomically)."""
        file = self.path(tee, fmspc, ca)
        if file.exists():
            try:
                cached = load_collateral(file)
            except InputError:
                cached = None  # a corrupt cache entry is refetched, never trusted
            if cached is not None and cached.issued <= now < cached.expires:
                return cached
        text = fetch_collateral(
            self.pccs_url,
            fmspc,
            tee=tee,
            ca=ca,
            root_ca_crl_url=self.root_ca_crl_url,
            timeout=self.timeout,
        )
        fetched = from_json_text(text, f"collateral from {self.pccs_url}")
        if fetched.fmspc != fmspc.upper():
            raise CollateralError(
                f"PCCS {self.pccs_url}: returned TCB info for FMSPC {fetched.fmspc}, not {fmspc}"
            )
        if not fetched.issued <= now < fetched.expires:
            raise CollateralError(
                f"PCCS {self.pccs_url}: collateral for FMSPC {fmspc} is stale (expired "
                f"{iso_time(fetched.expires)}, now {iso_time(now)}); refusing to use it"
            )
        write_json(file, json.loads(text))
        return fetched
