"""The epoch report's arithmetic: budget, split, uptime, reward, cumulative, root."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from veil.errors import InputError
from veil.rewards.activity import Segment, WorkerActivity, activity_from_segments, integrate
from veil.rewards.budget import Schedule, split_budget
from veil.rewards.epochs import EpochClock
from veil.rewards.report import EpochInputs, build_report, load_report, uptime_bps, write_report
from veil.rewards.tree import build_claim_tree, verify_claim
from veil.rewards.uptime import AttesterHeartbeats, count_heartbeats

CLOCK = EpochClock(1_000_000, 3600)
A1, A2, A3 = ("0x" + f"{i:02x}" * 20 for i in (0xA1, 0xA2, 0xA3))
P1, P2 = "0x" + "11" * 20, "0x" + "22" * 20
W = ["0x" + f"{0x30 + i:02x}" * 20 for i in range(6)]


def activity(worker: str, provider: str, weight: int, seconds: int = 3600) -> WorkerActivity:
    return WorkerActivity(worker, provider, 1, 1, weight * seconds, seconds if weight else 0)


def inputs(acts, logs, *, budget=1_000_000, threshold=1, previous=None, min_uptime=5000):
    return EpochInputs(
        chain_id=31337,
        pool="0x" + "99" * 20,
        registry="0x" + "98" * 20,
        clock=CLOCK,
        epoch=3,
        budget=budget,
        split=split_budget(budget, 4000, 4000),
        min_uptime_bps=min_uptime,
        threshold=threshold,
        activity=acts,
        logs=logs,
        previous=previous or {},
    )


def log(attester: str, beats: dict[str, range], refused=None) -> AttesterHeartbeats:
    return AttesterHeartbeats(attester, {w: list(r) for w, r in beats.items()}, refused or {})


def test_clock_numbers_epochs_from_genesis():
    assert CLOCK.epoch_at(1_000_000) == 0
    assert CLOCK.epoch_at(1_003_599) == 0
    assert CLOCK.epoch_at(1_003_600) == 1
    assert (CLOCK.start(2), CLOCK.end(2)) == (1_007_200, 1_010_800)
    with pytest.raises(InputError, match="before the rewards genesis"):
        CLOCK.epoch_at(999_999)
    with pytest.raises(InputError, match="non-negative"):
        CLOCK.start(-1)
    with pytest.raises(InputError, match="positive"):
        EpochClock(0, 0)


def test_schedule_halves_and_is_capped_by_the_pool():
    s = Schedule(1000, 24, 4000, 4000)
    assert [s.scheduled(e) for e in (0, 23, 24, 47, 48)] == [1000, 1000, 500, 500, 250]
    assert s.budget(0, 300) == 300
    assert s.budget(30, 10**9) == 500
    assert s.split(1001) == split_budget(1001, 4000, 4000)
    assert split_budget(1001, 4000, 4000).treasury == 1001 - 400 - 400
    with pytest.raises(InputError, match="exceed"):
        Schedule(1, 1, 6000, 5000)


@given(st.integers(0, 10**30), st.integers(0, 10_000), st.integers(0, 10_000))
def test_split_is_exact_remainder_to_treasury(budget, stakers, providers):
    if stakers + providers > 10_000:
        stakers = 10_000 - providers
    s = split_budget(budget, stakers, providers)
    assert s.treasury + s.stakers + s.providers == budget
    assert s.treasury >= budget * (10_000 - stakers - providers) // 10_000
    assert min(s.treasury, s.stakers, s.providers) >= 0


def test_weight_times_uptime_and_minimum_uptime():
    acts = [activity(W[0], P1, 10_000), activity(W[1], P1, 15_000), activity(W[2], P2, 18_000)]
    logs = [log(A1, {W[0]: range(60), W[1]: range(30), W[2]: range(29)})]
    report = build_report(inputs(acts, logs))
    rows = {w["worker"]: w for w in report.doc["workers"]}
    assert rows[W[0]]["uptimeBps"] == 10_000
    assert rows[W[1]]["uptimeBps"] == 5_000
    assert rows[W[2]]["uptimeBps"] == 4_833
    assert rows[W[2]]["reward"] == "0" and not rows[W[2]]["eligible"]
    # 400,000 to providers, scores 1.0 x 1.0 and 1.5 x 0.5: 4/7 and 3/7 of it (floored)
    assert rows[W[0]]["reward"] == str(400_000 * 4 // 7)
    assert rows[W[1]]["reward"] == str(400_000 * 3 // 7)
    assert int(report.doc["allocated"]) + int(report.doc["unallocated"]) == 400_000
    assert report.doc["providers"] == [
        {"provider": P1, "reward": str(400_000 * 4 // 7 + 400_000 * 3 // 7),
         "cumulative": str(400_000 * 4 // 7 + 400_000 * 3 // 7)}
    ]  # fmt: skip


def test_threshold_counts_only_heartbeats_enough_attesters_saw():
    logs = [
        log(A1, {W[0]: range(0, 60)}, {W[0]: {"replayed": 2}}),
        log(A2, {W[0]: range(10, 60)}, {W[0]: {"replayed": 1, "future": 4}}),
        log(A3, {W[0]: range(0, 20)}),
    ]
    counts = count_heartbeats(logs, 2)[W[0]]
    assert counts.accepted == 60  # 0..9 by A1+A3, 10..19 by all, 20..59 by A1+A2
    assert counts.counted == {A1: 60, A2: 50, A3: 20}
    assert counts.refused == {"future": 4, "replayed": 3}
    assert count_heartbeats(logs, 3)[W[0]].accepted == 10
    assert count_heartbeats(logs, 4)[W[0]].accepted == 0
    with pytest.raises(InputError, match="same attester"):
        count_heartbeats([logs[0], logs[0]], 1)


def test_a_worker_not_active_earns_nothing_even_with_heartbeats():
    acts = [activity(W[0], P1, 0), activity(W[1], P2, 10_000)]
    logs = [log(A1, {W[0]: range(60), W[1]: range(60), W[5]: range(60)})]
    report = build_report(inputs(acts, logs))
    rows = {w["worker"]: w for w in report.doc["workers"]}
    assert rows[W[0]]["reward"] == "0"
    assert rows[W[1]]["reward"] == "400000"
    assert report.doc["unregisteredWorkers"] == {W[5]: 60}


def test_partial_activity_expects_heartbeats_only_while_active():
    half = activity(W[0], P1, 10_000, seconds=1800)
    report = build_report(inputs([half, activity(W[1], P2, 10_000)],
                                 [log(A1, {W[0]: range(30), W[1]: range(60)})]))  # fmt: skip
    rows = {w["worker"]: w for w in report.doc["workers"]}
    assert rows[W[0]]["heartbeats"]["expected"] == 30 and rows[W[0]]["uptimeBps"] == 10_000
    assert int(rows[W[0]]["reward"]) * 2 == int(rows[W[1]]["reward"])


def test_cumulative_carries_previous_epochs_and_root_proves_it(tmp_path):
    acts = [activity(W[0], P1, 10_000)]
    report = build_report(inputs(acts, [log(A1, {W[0]: range(60)})], previous={P2: 77, P1: 5}))
    cumulative = report.cumulative()
    assert cumulative == {P1: 400_005, P2: 77}
    assert report.total == 400_082 and report.doc["previousTotal"] == "82"
    for provider, amount in cumulative.items():
        assert verify_claim(report.root, provider, amount, report.tree.proof(provider))
    path = write_report(report, tmp_path)
    assert path.read_bytes() == report.canonical()
    again = load_report(path)
    assert again.root == report.root and again.report_hash == report.report_hash
    doc = json.loads(path.read_bytes())
    doc["providers"][0]["cumulative"] = "999999999"
    path.write_text(json.dumps(doc))
    with pytest.raises(InputError, match="do not give its root"):
        load_report(path)


def test_nobody_scores_leaves_everything_unallocated():
    report = build_report(inputs([activity(W[0], P1, 10_000)], []))
    assert report.doc["allocated"] == "0" and report.doc["unallocated"] == "400000"
    assert report.root == bytes(32) and report.total == 0


def test_same_inputs_same_bytes():
    acts = [activity(W[i], P1 if i % 2 else P2, 10_000 + i) for i in range(5)]
    logs = [log(A1, {W[i]: range(40 + i) for i in range(5)})]
    a = build_report(inputs(acts, logs))
    b = build_report(inputs(list(reversed(acts)), logs))
    assert a.canonical() == b.canonical() and a.report_hash == b.report_hash


def test_bad_parameters_are_refused():
    with pytest.raises(InputError, match="min uptime"):
        build_report(inputs([], [], min_uptime=10_001))
    bad = inputs([], [])
    with pytest.raises(InputError, match="twice"):
        build_report(inputs([activity(W[0], P1, 1), activity(W[0], P1, 1)], []))
    assert uptime_bps(5, 0) == 0 and uptime_bps(80, 60) == 10_000
    assert bad.heartbeat_interval == 60


def test_integrate_expiry_and_changes():
    segs = [Segment(1000, 10_000, 10**9), Segment(2000, 15_000, 2500), Segment(3000, 0, 0)]
    assert integrate(segs, 0, 4000) == (10_000 * 1000 + 15_000 * 500, 1500)
    assert integrate([Segment(0, 5, 10**9)], 100, 200) == (500, 100)
    rows = activity_from_segments(CLOCK, 0, [(W[1], P1, 2, 1, [Segment(0, 15_000, 10**12)])])
    assert rows[0].weight_seconds == 15_000 * 3600 and rows[0].model == "h200"


worker_st = st.tuples(
    st.sampled_from(W), st.sampled_from([P1, P2]), st.integers(0, 40_000), st.integers(0, 3600)
)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(worker_st, max_size=6, unique_by=lambda t: t[0]),
    st.dictionaries(st.sampled_from(W), st.integers(0, 80)),
    st.integers(0, 10**27),
    st.dictionaries(st.sampled_from([P1, P2]), st.integers(0, 10**25)),
    st.integers(0, 10_000),
)
def test_paid_within_budget_and_cumulative_never_decreases(acts, beats, budget, prev, minimum):
    acts = [WorkerActivity(w, p, 1, 1, wt * s, s if wt else 0) for w, p, wt, s in acts]
    logs = [log(A1, {w: range(n) for w, n in beats.items()})]
    report = build_report(inputs(acts, logs, budget=budget, previous=prev, min_uptime=minimum))
    providers = report.doc["split"]["providers"]
    allocated = sum(int(w["reward"]) for w in report.doc["workers"])
    assert allocated == int(report.doc["allocated"]) <= int(providers)
    assert report.total - sum(prev.values()) == allocated
    cumulative = report.cumulative()
    for provider, before in prev.items():
        assert cumulative.get(provider, 0) >= before
    inactive = {a.worker for a in acts if a.weight_seconds == 0}
    assert all(w["reward"] == "0" for w in report.doc["workers"] if w["worker"] in inactive)


def test_claim_tree_matches_openzeppelin(tmp_path):
    import shutil
    import subprocess
    from pathlib import Path

    if shutil.which("node") is None:
        pytest.fail("node is needed to compare with @openzeppelin/merkle-tree")
    root_dir = Path(__file__).resolve().parents[2]
    values = {"0x" + f"{i:02x}" * 20: i * 10**18 + 7 for i in range(1, 12)}
    tree = build_claim_tree(values)
    script = (
        "const {StandardMerkleTree}=require('@openzeppelin/merkle-tree');"
        "const v=JSON.parse(process.argv[1]);"
        "const t=StandardMerkleTree.of(v,['address','uint256']);"
        "const l=StandardMerkleTree.load(JSON.parse(process.argv[2]));"
        "console.log(JSON.stringify({root:t.root,loaded:l.root,proof:l.getProof(0)}))"
    )
    out = subprocess.run(
        ["node", "-e", script, json.dumps([[p, str(v)] for p, v in values.items()]),
         json.dumps(tree.dump())],
        cwd=root_dir, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    theirs = json.loads(out.stdout)
    assert theirs["root"] == theirs["loaded"] == "0x" + tree.root.hex()
    first = tree.values[0][0]
    assert theirs["proof"] == ["0x" + p.hex() for p in tree.proof(first)]


def test_worker_history_reads_the_reports(tmp_path):
    from veil.rewards.history import worker_history

    acts = [activity(W[0], P1, 10_000), activity(W[1], P2, 10_000)]
    for epoch, beats in ((3, 60), (4, 20)):
        report = build_report(
            EpochInputs(
                **{**inputs(acts, [log(A1, {W[0]: range(beats)})]).__dict__, "epoch": epoch}
            )
        )
        write_report(report, tmp_path)
    rows = worker_history(W[0], tmp_path)
    assert [(r["epoch"], r["uptimeBps"], r["eligible"]) for r in rows] == [
        (3, 10_000, True),
        (4, 3_333, False),
    ]
    assert rows[0]["reward"] == "400000" and rows[1]["reward"] == "0"
    assert worker_history(W[0], tmp_path, last=1)[0]["epoch"] == 4
    assert worker_history(W[5], tmp_path) == []
    assert worker_history(W[0], tmp_path / "missing") == []


def test_deregister_and_reregister_loses_nothing_already_earned():
    first = build_report(inputs([activity(W[0], P1, 10_000)], [log(A1, {W[0]: range(60)})]))
    earned = first.cumulative()[P1]
    # next epoch: the old key is gone (weight 0), the machine is back under a new key
    # for the second half only
    second = build_report(
        inputs(
            [activity(W[0], P1, 0), activity(W[1], P1, 10_000, seconds=1800)],
            [log(A1, {W[1]: range(30)})],
            previous=first.cumulative(),
        )
    )
    assert second.cumulative()[P1] == earned + 400_000
    gone = build_report(inputs([activity(W[0], P1, 0)], [], previous=second.cumulative()))
    assert gone.cumulative() == second.cumulative() and gone.total == second.total
    assert verify_claim(gone.root, P1, gone.cumulative()[P1], gone.tree.proof(P1))


def test_provider_spelling_does_not_split_a_leaf():
    lower = P1.lower()
    acts = [activity(W[0], lower, 10_000)]
    report = build_report(inputs(acts, [log(A1, {W[0]: range(60)})], previous={P1: 5}))
    assert len(report.doc["providers"]) == 1 and report.total == 400_005
    with pytest.raises(InputError, match="appears twice"):
        build_claim_tree({"0x" + "ab" * 20: 1, "0x" + "AB" * 20: 2})
