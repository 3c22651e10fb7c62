"""`verify_evidence`: the one entry point the CLI, the attester service and the worker share.

It runs every check and collects every refusal instead of stopping at the first, so a
provider sees all that is wrong with a machine in one run. Order of trust: first the
Intel signature chain and TCB (dcap-qvl), then the event log must reproduce the signed
RTMRs, and only then are the log's app identity events believed and matched against the
policy. Bad input files raise InputError; everything about the evidence itself becomes a
reason in the Verdict.
"""

from __future__ import annotations

import time

from veil.tee.collateral import Collateral, freshness_problems, iso_time
from veil.tee.eventlog import replay
from veil.tee.evidence import Evidence
from veil.tee.gpu import binding_problem, gpu_problems, parse_claim_set
from veil.tee.identity import AppIdentity, app_identity
from veil.tee.policy import DEFAULT_POLICY, OsImage, Policy
from veil.tee.simulator import (
    dev_public_key,
    is_simulated_quote,
    parse_simulated_quote,
    simulated_signature_problem,
)
from veil.tee.tdx import Measurements, check_quote, parse_measurements, quote_hash
from veil.tee.verdict import Verdict


def verify_evidence(
    evidence: Evidence,
    collateral: Collateral | None,
    policy: Policy = DEFAULT_POLICY,
    now: int | None = None,
    *,
    gpu_evidence: bytes | None = None,
) -> Verdict:
    """Judge a quote (with its event log) against Intel collateral and a policy at time `now`."""
    if now is None:
        now = int(time.time())
    reasons: list[str] = []
    checks: list[str] = []
    simulated = evidence.claims_simulated or is_simulated_quote(evidence.quote)
    status: str | None
    advisories: list[str] = []

    if simulated:
        measurements = _simulated(evidence, policy, reasons, checks)
        status = "SIMULATED"
    else:
        measurements = parse_measurements(evidence.quote)
        status, advisories = _intel(evidence.quote, measurements, collateral, policy, now,
                                    reasons, checks)  # fmt: skip

    app = _event_log(evidence, measurements, policy, reasons, checks)
    if app is not None:
        _app_policy(app, policy, reasons, checks)
    if policy.os_images:
        _os_image(measurements, app, evidence, policy.os_images, reasons, checks)
    _report_data(measurements, policy, reasons, checks)
    gpu = _gpu(gpu_evidence, app, policy, reasons, checks)

    return Verdict(
        accepted=not reasons,
        reasons=reasons,
        checks=checks,
        tcb_status=status,
        advisory_ids=advisories,
        measurements=measurements,
        app=app,
        simulated=simulated,
        quote_hash=quote_hash(evidence.quote),
        report_data=measurements.report_data,
        tee=measurements.tee,
        gpu=gpu,
    )


def _simulated(
    evidence: Evidence, policy: Policy, reasons: list[str], checks: list[str]
) -> Measurements:
    if not is_simulated_quote(evidence.quote):
        # The file says simulated but the quote is not ours: nothing vouches for it.
        reasons.append("simulated TEE: evidence is marked simulated but the quote is not a"
                       " veil simulator quote")  # fmt: skip
        return parse_measurements(evidence.quote)
    parsed = parse_simulated_quote(evidence.quote)
    if not policy.allow_simulated:
        reasons.append("simulated TEE: SIMULATED evidence is refused by policy"
                       " (allow_simulated = false)")  # fmt: skip
    problem = simulated_signature_problem(
        evidence.quote, (dev_public_key(), *policy.simulator_keys)
    )
    if problem:
        reasons.append(problem)
    else:
        checks.append("simulator signature valid (SIMULATED, development key, no hardware)")
    return parsed.measurements


def _intel(
    raw: bytes,
    measurements: Measurements,
    collateral: Collateral | None,
    policy: Policy,
    now: int,
    reasons: list[str],
    checks: list[str],
) -> tuple[str | None, list[str]]:
    if measurements.tee not in policy.allowed_tee:
        required = " or ".join(t.upper() for t in policy.allowed_tee)
        reasons.append(f"TEE type: {measurements.tee.upper()} quote, policy requires {required}")
    else:
        checks.append(f"TEE type {measurements.tee.upper()}")
    if measurements.debug and not policy.allow_debug:
        reasons.append("TD is in debug mode (TD_ATTRIBUTES.DEBUG set): the host can read it")
    if collateral is None:
        reasons.append("collateral: none given (pass a collateral file or a PCCS URL)")
        return None, []
    stale = freshness_problems(collateral, now, policy.max_collateral_age)
    reasons += stale
    if not stale:
        checks.append(
            f"collateral fresh for FMSPC {collateral.fmspc} (issued {iso_time(collateral.issued)},"
            f" expires {iso_time(collateral.expires)})"
        )
    result = check_quote(raw, collateral.inner, now)
    if not result.ok:
        assert result.error is not None
        if result.error not in reasons:
            reasons.append(result.error)
        return None, []
    checks.append("Intel signature chain valid (dcap-qvl)")
    advisories = list(result.advisory_ids)
    if result.status not in policy.accepted_tcb_statuses:
        accepted = ", ".join(policy.accepted_tcb_statuses) or "none"
        reasons.append(f"TCB status {result.status} is not accepted (policy accepts: {accepted})")
    else:
        checks.append(f"TCB status {result.status} accepted")
    refused = [a for a in advisories if a not in policy.accepted_advisories]
    if refused:
        reasons.append(f"TCB advisories not accepted by policy: {', '.join(refused)}")
    return result.status, advisories


def _event_log(
    evidence: Evidence,
    measurements: Measurements,
    policy: Policy,
    reasons: list[str],
    checks: list[str],
) -> AppIdentity | None:
    if measurements.tee != "tdx":
        return None
    if evidence.event_log is None:
        if policy.needs_event_log():
            reasons.append("event log: none given, but the policy constrains the app or OS"
                           " image, which only a replayed event log shows")  # fmt: skip
        else:
            checks.append("note: no event log given; RTMRs not replayed, app identity unknown")
        return None
    result = replay(evidence.event_log)
    ok = True
    for name in result.bad_digests:
        reasons.append(f"event log: runtime event {name!r} digest does not match its payload")
        ok = False
    differ = result.mismatches(measurements.rtmrs())
    if differ:
        names = ", ".join(f"RTMR{i}" for i in differ)
        reasons.append(f"event log does not replay: {names} differ from the quote")
        ok = False
    if not ok:
        return None
    checks.append("event log replays to RTMR0-3")
    return app_identity(evidence.event_log)


def _app_policy(app: AppIdentity, policy: Policy, reasons: list[str], checks: list[str]) -> None:
    if policy.allowed_compose_hashes:
        if app.compose_hash is None:
            reasons.append("compose hash: the event log has no compose-hash event")
        elif app.compose_hash not in policy.allowed_compose_hashes:
            reasons.append(f"compose hash {app.compose_hash} is not allowed by policy")
        else:
            checks.append("compose hash allowed by policy")
    if policy.allowed_app_ids:
        if app.app_id not in policy.allowed_app_ids:
            reasons.append(f"app id {app.app_id} is not allowed by policy")
        else:
            checks.append("app id allowed by policy")


def _image_matches(image: OsImage, m: Measurements, app: AppIdentity | None) -> bool:
    if image.os_image_hash is not None and (
        app is None or app.os_image_hash != image.os_image_hash
    ):
        return False
    pairs = ((image.mrtd, m.mr_td), (image.rtmr0, m.rtmr0), (image.rtmr1, m.rtmr1),
             (image.rtmr2, m.rtmr2))  # fmt: skip
    return all(want is None or want == got for want, got in pairs)


def _os_image(
    m: Measurements,
    app: AppIdentity | None,
    evidence: Evidence,
    images: tuple[OsImage, ...],
    reasons: list[str],
    checks: list[str],
) -> None:
    for image in images:
        if _image_matches(image, m, app):
            checks.append(f"OS image allowed by policy ({image.name or 'unnamed'})")
            return
    measured = app.os_image_hash if app else None
    claimed = (evidence.vm_config or {}).get("os_image_hash")
    detail = f"measured os-image-hash {measured}" if measured else "no measured os-image-hash"
    if claimed and claimed != measured:
        detail += f"; vm_config claims {claimed} (not measured, not trusted)"
    reasons.append(f"OS image not allowed by policy: MRTD {(m.mr_td or '')[:16]}..., {detail}")


def _report_data(m: Measurements, policy: Policy, reasons: list[str], checks: list[str]) -> None:
    rule = policy.report_data
    if rule.mode == "any":
        return
    expected = rule.expected()
    if expected is None:
        what = "key content (--bind-key)" if rule.mode == "sha512" else "nonce (--nonce)"
        reasons.append(f"report data: policy mode {rule.mode} needs a {what} to compare with")
        return
    if bytes.fromhex(m.report_data) != expected:
        how = f"sha512({rule.tag!r}:key)" if rule.mode == "sha512" else "the nonce"
        reasons.append(f"report data does not bind the expected value: it is not {how}")
    else:
        checks.append(
            f"report data binds the expected {'key' if rule.mode == 'sha512' else 'nonce'}"
        )


def _gpu(
    gpu_evidence: bytes | None,
    app: AppIdentity | None,
    policy: Policy,
    reasons: list[str],
    checks: list[str],
) -> dict[str, object] | None:
    if gpu_evidence is None:
        if policy.gpu.required:
            reasons.append("gpu: policy requires GPU evidence, none given")
        return None
    claims = parse_claim_set(gpu_evidence)
    problems = gpu_problems(claims, policy.gpu)
    reasons += problems
    if not problems:
        checks.append(f"gpu claims accepted ({len(claims)} GPU(s)); NVIDIA chain not re-checked")
    binding = None
    if policy.gpu.require_binding:
        binding = binding_problem(gpu_evidence, app.gpu_evidence_hash if app else None)
        if binding:
            reasons.append(binding)
        else:
            checks.append("gpu evidence bound to this CVM (RTMR3 gpu-evidence-hash)")
    return {"claims": [c.to_json() for c in claims], "bound": binding is None}
