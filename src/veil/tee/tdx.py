"""Intel DCAP quotes: parse measurements and check the signature chain and TCB with dcap-qvl.

dcap-qvl (Phala's Rust verifier, Python bindings) does the cryptography: the PCK chain
up to Intel's root CA, the CRLs, the QE report, the quote signature, and the TCB level
match against Intel's signed TCB info. Here we only turn its result, or its error, into
one line a reader can act on, and pull out the measurements a policy talks about.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass
from typing import Any

import dcap_qvl

from veil.errors import InputError

TEE_TDX = 0x81
TEE_SGX = 0x00


@dataclass(frozen=True)
class Measurements:
    """What the quote signs about the TD (hex strings); SGX quotes fill mr_enclave instead."""

    tee: str
    quote_version: int
    fmspc: str | None
    mr_td: str | None = None
    rtmr0: str | None = None
    rtmr1: str | None = None
    rtmr2: str | None = None
    rtmr3: str | None = None
    mr_seam: str | None = None
    mr_config_id: str | None = None
    mr_owner: str | None = None
    td_attributes: str | None = None
    xfam: str | None = None
    mr_enclave: str | None = None
    mr_signer: str | None = None
    report_data: str = ""

    def rtmrs(self) -> list[bytes]:
        return [bytes.fromhex(v or "") for v in (self.rtmr0, self.rtmr1, self.rtmr2, self.rtmr3)]

    @property
    def debug(self) -> bool:
        """TD_ATTRIBUTES bit 0 (TUD.DEBUG): a debuggable TD's memory is readable by the host."""
        if self.td_attributes is None:
            return False
        return bool(bytes.fromhex(self.td_attributes)[0] & 0x01)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class QuoteCheck:
    """dcap-qvl's answer: a TCB status with advisories, or the reason it refused."""

    status: str | None
    advisory_ids: tuple[str, ...]
    error: str | None

    @property
    def ok(self) -> bool:
        return self.error is None


def quote_hash(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def parse_measurements(raw: bytes) -> Measurements:
    """Read a quote's header and report; a file that is not a quote raises one InputError line."""
    try:
        quote = dcap_qvl.parse_quote(raw)
    except (ValueError, RuntimeError) as error:
        raise InputError(f"quote: not a DCAP quote ({_first_line(str(error))})") from None
    try:
        fmspc: str | None = quote.fmspc().upper()
    except (ValueError, RuntimeError):
        fmspc = None
    report = quote.report
    version = int(quote.header.version)
    if quote.is_sgx():
        return Measurements(
            tee="sgx",
            quote_version=version,
            fmspc=fmspc,
            mr_enclave=report.mr_enclave.hex(),
            mr_signer=report.mr_signer.hex(),
            report_data=report.report_data.hex(),
        )
    return Measurements(
        tee="tdx",
        quote_version=version,
        fmspc=fmspc,
        mr_td=report.mr_td.hex(),
        rtmr0=report.rt_mr0.hex(),
        rtmr1=report.rt_mr1.hex(),
        rtmr2=report.rt_mr2.hex(),
        rtmr3=report.rt_mr3.hex(),
        mr_seam=report.mr_seam.hex(),
        mr_config_id=report.mr_config_id.hex(),
        mr_owner=report.mr_owner.hex(),
        td_attributes=report.td_attributes.hex(),
        xfam=report.xfam.hex(),
        report_data=report.report_data.hex(),
    )


def check_quote(raw: bytes, collateral: dcap_qvl.QuoteCollateralV3, now: int) -> QuoteCheck:
    """Run dcap-qvl; its refusals become a QuoteCheck with one explained line, not an exception."""
    try:
        report = dcap_qvl.verify(raw, collateral, now)
    except (ValueError, RuntimeError) as error:
        return QuoteCheck(None, (), explain_dcap_error(str(error)))
    return QuoteCheck(str(report.status), tuple(report.advisory_ids), None)


_CRL_EXPIRED = re.compile(r"CrlExpired \{ time: UnixTime\((\d+)\), next_update: UnixTime\((\d+)\)")


def explain_dcap_error(message: str) -> str:
    """Map dcap-qvl's error text to the reason a reader needs (stale, forged, outdated...)."""
    crl = _CRL_EXPIRED.search(message)
    if crl:
        return (
            f"collateral stale: CRL expired at unix {crl.group(2)} "
            f"(now {crl.group(1)}); fetch fresh collateral"
        )
    lowered = message.lower()
    table = [
        ("tcbinfo expired", "collateral stale: TCB info expired; fetch fresh collateral"),
        ("qeidentity expired", "collateral stale: QE identity expired; fetch fresh collateral"),
        ("expired", "collateral stale: a certificate or CRL has expired"),
        (
            "report signature is invalid",
            "signature invalid: the quote's report signature does"
            " not verify (quote altered or forged)",
        ),
        ("signature", "signature invalid: " + _first_line(message)),
        (
            "no matching tcb level",
            "TCB: no matching TCB level in Intel's TCB info (platform outdated or unknown)",
        ),
        ("revoked", "signature chain: a certificate is revoked"),
        ("fmspc", "collateral mismatch: TCB info is for another platform (FMSPC)"),
    ]
    for needle, reason in table:
        if needle in lowered:
            return reason
    return f"quote refused by dcap-qvl: {_first_line(message)}"


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return "; ".join(lines[:3]) if lines else "unknown error"
