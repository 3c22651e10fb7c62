"""The attester's record grows with distinct bindings, not with traffic.

Replays are answered from the record with the very first answer, without touching the
chain or verifying again; a different binding for a bound account is a rebinding, kept
up to the per-account cap and refused beyond it; an old file's duplicates collapse.
"""

from __future__ import annotations

import http.client
import json
import sqlite3
import threading
from pathlib import Path

import pytest
from binding_kit import RECEIVER, body_for, make_holders, post, serving

from veil.attestation.api import BINDINGS as BINDINGS_PATH
from veil.migration.synthetic import Keypair
from veil.services.attester.store import Store


@pytest.fixture(scope="module")
def holders() -> list[Keypair]:
    return make_holders(3)


def test_the_same_binding_posted_1000_times_leaves_one_row(
    tmp_path: Path, holders: list[Keypair]
) -> None:
    body = json.dumps(body_for(holders[0])).encode()
    with serving(tmp_path / "a.sqlite", holders) as served:
        conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=20)
        answers = set()
        for _ in range(1000):
            conn.request("POST", BINDINGS_PATH, body, {"Content-Type": "application/json"})
            response = conn.getresponse()
            assert response.status == 200
            answers.add(response.read())
        conn.close()
        store = Store(served.db)
        assert store.count("bindings") == 1
        assert len(answers) == 1  # byte for byte the same answer every time
        # verified and checked against the chain once; replays never reach the chain
        assert len(served.claimed_checks) == 1
        [row] = store.bindings_for(body_for(holders[0])["account"])
        assert json.loads(next(iter(answers)))["digest"] == row["digest"]


def test_racing_posts_of_one_binding_get_one_answer_and_one_row(
    tmp_path: Path, holders: list[Keypair]
) -> None:
    body = body_for(holders[1])
    answers: list[dict] = []
    with serving(tmp_path / "a.sqlite", holders) as served:

        def hit() -> None:
            status, answer, _ = post(served.port, body)
            assert status == 200
            answers.append(answer)

        threads = [threading.Thread(target=hit) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert Store(served.db).count("bindings") == 1
    assert len(answers) == 8 and all(a == answers[0] for a in answers)


def test_multisignature_and_bare_forms_are_one_binding(
    tmp_path: Path, holders: list[Keypair]
) -> None:
    holder = holders[0]  # sr25519: MultiSignature variant 1
    bare = body_for(holder)
    multi = {**bare, "signature": "0x01" + bare["signature"][2:]}
    with serving(tmp_path / "a.sqlite", holders) as served:
        first = post(served.port, bare)
        second = post(served.port, multi)
        assert first[0] == second[0] == 200
        assert first[1] == second[1]
        assert Store(served.db).count("bindings") == 1


def test_rebinding_is_recorded_up_to_the_cap_then_refused(
    tmp_path: Path, holders: list[Keypair]
) -> None:
    holder = holders[1]
    receivers = ["0x" + f"{n:02x}" * 20 for n in (0x11, 0x22, 0x33)]
    with serving(tmp_path / "a.sqlite", holders, max_bindings_per_account=2) as served:
        first = post(served.port, body_for(holder, receivers[0]))
        second = post(served.port, body_for(holder, receivers[1]))
        assert first[0] == second[0] == 200
        assert first[1]["rebinding"] is False and second[1]["rebinding"] is True
        status, refusal, _ = post(served.port, body_for(holder, receivers[2]))
        assert status == 409 and refusal["code"] == "binding_limit"
        assert "2 distinct bindings" in refusal["message"] and refusal["request_id"]
        # the recorded ones are still answered, unchanged
        again = post(served.port, body_for(holder, receivers[0]))
        assert again[:2] == (200, first[1])
        rows = Store(served.db).bindings_for(body_for(holder)["account"])
        assert [r["receiver"].lower() for r in rows] == receivers[:2]


def test_a_refused_binding_writes_nothing_and_a_replay_skips_verification(
    tmp_path: Path, holders: list[Keypair]
) -> None:
    body = body_for(holders[2])
    forged = {**body, "receiver": "0x" + "ee" * 20}
    with serving(tmp_path / "a.sqlite", holders) as served:
        assert post(served.port, forged)[0] == 422
        assert post(served.port, {"account": "nonsense"})[0] == 400
        assert Store(served.db).count("bindings") == 0
        assert post(served.port, body)[0] == 200
        checks = len(served.claimed_checks)
        assert post(served.port, body)[0] == 200
        assert len(served.claimed_checks) == checks  # garbage and replays are cheap


def test_an_older_file_with_duplicates_collapses_to_one_row(
    tmp_path: Path, holders: list[Keypair]
) -> None:
    db = tmp_path / "old.sqlite"
    with sqlite3.connect(db) as old:
        old.executescript(
            "CREATE TABLE bindings (id INTEGER PRIMARY KEY, account TEXT NOT NULL,"
            " receiver TEXT NOT NULL, leaf_index INTEGER NOT NULL, scheme TEXT NOT NULL,"
            " substrate_signature TEXT NOT NULL, digest TEXT NOT NULL,"
            " attestation TEXT NOT NULL, signed_at REAL NOT NULL);"
        )
        for n in range(5):
            old.execute(
                "INSERT INTO bindings (account, receiver, leaf_index, scheme,"
                " substrate_signature, digest, attestation, signed_at)"
                " VALUES ('0xaa', ?, 0, 'sr25519', '0x01', '0xd', '{}', ?)",
                (RECEIVER, float(n)),
            )
    store = Store(db)
    assert store.count("bindings") == 1
    assert store.bindings_for("0xaa")[0]["signed_at"] == 0.0  # the first one is kept
