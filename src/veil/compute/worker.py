"""The worker agent: prove the machine, register it, keep it attested, report uptime.

One round: read the worker's registry record; if it is not registered, get a quote that
binds the worker key, have the attesters verify it, and register with the threshold of
their signatures; if its attestation expires within `reattest_margin` seconds (chain
time), do the same with reattestWorker; then send a signed heartbeat (v2, see
`veil.compute.heartbeat`) to every attester: numbered by the RewardPool's epoch clock
(read from the chain once; without a RewardPool, the one the attesters announce), and
naming the hash of the latest block, read just before signing.

The identity (worker key) is created once and kept; nothing in a failed round touches
it. A round that fails (attester down, RPC down, a refusal) is logged and followed by a
pause that doubles up to `max_backoff` (jittered, so agents refused together by a
loaded attester do not return together), so an outage costs heartbeats, never the
identity, and the next good round picks up where the last left off. The heartbeat
sequence is persisted before each send, so a restarted agent never replays one.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from eth_account.signers.local import LocalAccount

from veil.attestation.api import RegistrationRequest
from veil.attestation.client import AttesterClient
from veil.compute import attestation, heartbeat
from veil.compute.attestation import GpuModel, RegistryDomain, WorkerAttestation
from veil.compute.evidence import worker_report_data
from veil.compute.heartbeat import DEFAULT_SCHEDULE, EpochSchedule, schedule_from_chain
from veil.compute.identity import load_or_create_identity, load_state, save_state
from veil.compute.quote_source import QuoteSource
from veil.compute.registry import RegistryClient
from veil.errors import InputError, VeilError

log = logging.getLogger("veil.worker")


class AttestationShortfall(VeilError):
    """Fewer valid attester signatures than the registry's threshold."""


@dataclass
class WorkerConfig:
    provider: LocalAccount
    source: QuoteSource
    attesters: list[str]
    state_dir: Path
    gpu_model: int = GpuModel.CPU_TDX
    gpu_count: int = 0
    gpu_evidence: bytes | None = None
    collateral: str | None = None
    interval: float = 30.0
    reattest_margin: int = 3_600
    max_backoff: float = 300.0
    epochs: EpochSchedule | None = None  # default: the RewardPool's, else the attesters'


@dataclass
class RoundReport:
    round: int
    action: str | None = None  # "registered" | "reattested"
    expiry: int | None = None
    heartbeats: int = 0
    sequence: int | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass
class WorkerAgent:
    config: WorkerConfig
    registry: RegistryClient
    clock: Callable[[], float] = time.time
    identity: LocalAccount = field(init=False)
    _domain: RegistryDomain | None = field(default=None, init=False)
    _schedule: EpochSchedule | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.identity = load_or_create_identity(self.config.state_dir)

    @property
    def domain(self) -> RegistryDomain:
        """Read from the chain on first use, so an agent can start while the RPC is down."""
        if self._domain is None:
            self._domain = self.registry.domain()
        return self._domain

    @property
    def schedule(self) -> EpochSchedule:
        """The epoch clock heartbeats are numbered by, found on first use."""
        if self._schedule is None:
            self._schedule = (
                self.config.epochs
                or schedule_from_chain(self.registry.chain)
                or self._announced_schedule()
            )
        return self._schedule

    def _announced_schedule(self) -> EpochSchedule:
        """Without a RewardPool, the attesters' schedule (`/v1/health`); a wrong one costs
        nothing but refused heartbeats (`wrong_epoch`)."""
        problems = []
        for url in self.config.attesters:
            try:
                epoch = AttesterClient(url).health().get("compute", {}).get("epoch")
            except VeilError as error:
                problems.append(str(error))
                continue
            if isinstance(epoch, dict):
                try:
                    genesis, length = epoch.get("genesis_time"), epoch.get("epoch_length")
                    return EpochSchedule(genesis, length)  # type: ignore[arg-type]  # checks
                except InputError as error:
                    problems.append(f"attester {url}: {error}")
        if not problems:
            return DEFAULT_SCHEDULE
        raise VeilError("heartbeat epochs: no RewardPool and no attester says ("
                        + "; ".join(problems) + ")")  # fmt: skip

    def latest_block_hash(self) -> bytes:
        return bytes(self.registry.chain.w3.eth.get_block("latest")["hash"])

    @property
    def address(self) -> str:
        return self.identity.address

    # --- attestation ---------------------------------------------------------------

    def attest(self) -> tuple[WorkerAttestation, list[bytes]]:
        """A fresh quote, verified and signed by at least `threshold` registered attesters."""
        evidence = self.config.source.evidence(
            worker_report_data(self.address), self.config.gpu_evidence
        )
        gpu = self.config.gpu_evidence
        request = RegistrationRequest(
            evidence=evidence,
            worker=self.address,
            provider=self.config.provider.address,
            gpu_model=int(self.config.gpu_model),
            gpu_count=self.config.gpu_count,
            gpu_evidence=gpu.decode() if gpu is not None else None,
            collateral=self.config.collateral,
        )
        need = self.registry.threshold()
        agreed: WorkerAttestation | None = None
        signatures: list[bytes] = []
        problems: list[str] = []
        for url in self.config.attesters:
            if len(signatures) >= need:
                break
            try:
                answer = AttesterClient(url).register(request)
                signed = WorkerAttestation.from_json(answer.attestation)
                signature = answer.signature
                signer = attestation.recover(signed, self.domain, signature)
            except VeilError as error:
                problems.append(str(error))
                continue
            if signed.worker != self.address or signed.provider != self.config.provider.address:
                problems.append(f"attester {url}: signed for another worker or provider")
                continue
            if agreed is not None and signed != agreed:
                problems.append(f"attester {url}: signed a different attestation")
                continue
            if not self.registry.is_attester(signer):
                problems.append(f"attester {url}: signer {signer} is not registered on chain")
                continue
            if agreed is None:
                agreed = signed
                request = replace(request, expiry=signed.expiry)  # the others sign this struct
            signatures.append(signature)
        if agreed is None or len(signatures) < need:
            detail = "; ".join(problems) or "no attesters configured"
            raise AttestationShortfall(
                f"attestation: {len(signatures)} of {need} signatures ({detail})"
            )
        return agreed, attestation.order_signatures(agreed, self.domain, signatures)

    # --- rounds --------------------------------------------------------------------

    def ensure_attested(self) -> tuple[str | None, int]:
        """Register or re-attest as needed; returns (action or None, current expiry)."""
        record = self.registry.worker(self.address)
        if record.registered and record.provider != self.config.provider.address:
            raise VeilError(f"worker {self.address}: registered by {record.provider}, not by"
                            f" {self.config.provider.address}")  # fmt: skip
        if record.registered and record.expiry - self.registry.chain_time() > (
            self.config.reattest_margin
        ):
            return None, record.expiry
        signed, signatures = self.attest()
        if record.registered:
            self.registry.reattest_worker(self.config.provider, signed, signatures)
            return "reattested", signed.expiry
        self.registry.register_worker(self.config.provider, signed, signatures)
        return "registered", signed.expiry

    def send_heartbeats(self) -> tuple[int, int, list[str]]:
        """One signed heartbeat to every attester; returns (accepted, sequence, problems)."""
        schedule, block = self.schedule, self.latest_block_hash()  # before a sequence is used
        state = load_state(self.config.state_dir)
        sequence = int(state.get("sequence", 0)) + 1
        save_state(self.config.state_dir, {**state, "sequence": sequence})
        now = int(self.clock())
        beat = heartbeat.Heartbeat(self.address, schedule.epoch(now), sequence, now, block)
        request = heartbeat.request(beat, heartbeat.sign(beat, self.domain, self.identity.key))
        accepted, problems = 0, []
        for url in self.config.attesters:
            try:
                AttesterClient(url).heartbeat(request)
                accepted += 1
            except VeilError as error:  # unreachable, refused, or an answer of another shape
                problems.append(str(error))
                if getattr(error, "code", "") == "wrong_epoch" and self.config.epochs is None:
                    self._schedule = None  # governance changed the epochs: read them again
        return accepted, sequence, problems

    def round(self, number: int) -> RoundReport:
        report = RoundReport(number)
        try:
            report.action, report.expiry = self.ensure_attested()
        except Exception as error:  # RPC, attester, quote: all retried next round
            report.errors.append(_one_line(error))
            return report
        report.heartbeats, report.sequence, problems = self.send_heartbeats()
        if report.heartbeats == 0:
            report.errors += problems or ["heartbeat: no attester accepted it"]
        return report

    def run(
        self,
        iterations: int | None = None,
        stop: threading.Event | None = None,
        on_round: Callable[[RoundReport], None] = lambda _r: None,
    ) -> list[RoundReport]:
        """Rounds until `iterations` are done or `stop` is set; failures back off."""
        stop = stop or threading.Event()
        reports: list[RoundReport] = []
        failures = 0
        number = 0
        while not stop.is_set() and (iterations is None or number < iterations):
            number += 1
            report = self.round(number)
            reports.append(report)
            on_round(report)
            for problem in report.errors:
                log.warning("round %d: %s", number, problem)
            failures = 0 if report.ok else failures + 1
            if iterations is not None and number >= iterations:
                break
            pause = self.config.interval * (2 ** min(failures, 16))
            pause = min(pause, max(self.config.max_backoff, self.config.interval))
            if failures:  # between the last good pause and this one, at random
                pause = self.config.interval + random.random() * (pause - self.config.interval)
            stop.wait(pause)
        return reports


def _one_line(error: Exception) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {text}" if not isinstance(error, VeilError) else text
