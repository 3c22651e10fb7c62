"""`GET /v1/apps/{id}` checks the key and reads the app in one query: it must refuse and
answer exactly like the two-step routes, and see a revocation made on another replica."""

from __future__ import annotations

import asyncio

from cloud_kit import CloudKit, account, make_kit

from veil.services.cloud.database import HotRead


def test_one_app_read_refuses_like_every_other_read(cloud: CloudKit) -> None:
    cloud.sync(account("w1"))
    app = cloud.deploy("alice")
    app_id = app["app_id"]
    path = f"/v1/apps/{app_id}"
    headers = cloud.key("alice")

    ok = cloud.client.get(path, headers=headers)
    assert ok.status_code == 200 and ok.json()["app_id"] == app_id
    listed = cloud.client.get("/v1/apps", headers=headers).json()
    assert [a for a in listed if a["app_id"] == app_id] == [ok.json()]
    # lower-case id: the same app
    lower = cloud.client.get(f"/v1/apps/{app_id.lower()}", headers=headers)
    assert lower.json()["app_id"] == app_id

    assert cloud.client.get(path).json()["code"] == "unauthorized"
    bad = cloud.client.get(path, headers={"Authorization": "Bearer veil_nope"})
    assert bad.status_code == 401 and bad.json()["code"] == "invalid_api_key"
    # a malformed app id with a bad key: the key is refused first (no probing without a key)
    both = cloud.client.get("/v1/apps/zz", headers={"Authorization": "Bearer veil_nope"})
    assert both.status_code == 401 and both.json()["code"] == "invalid_api_key"
    malformed = cloud.client.get("/v1/apps/zz", headers=headers)
    assert malformed.status_code == 404 and malformed.json()["code"] == "app_not_found"
    # another account's app is as absent as a missing one
    other = cloud.client.get(path, headers=cloud.key("bob"))
    assert other.status_code == 404 and other.json()["code"] == "app_not_found"
    missing = cloud.client.get("/v1/apps/0x" + "12" * 20, headers=headers)
    assert missing.status_code == 404

    writer = cloud.client.post(
        "/v1/auth/keys", json={"scopes": ["apps:write"], "label": "w"}, headers=headers
    ).json()
    scoped = cloud.client.get(path, headers={"Authorization": f"Bearer {writer['api_key']}"})
    assert scoped.status_code == 403 and scoped.json()["code"] == "insufficient_scope"


def test_a_revocation_on_one_replica_is_refused_at_once_by_another(db_url: str) -> None:
    first = make_kit(db_url)
    second = make_kit(db_url)
    try:
        first.sync(account("w1"))
        app_id = first.deploy("alice")["app_id"]
        headers = first.key("alice")
        assert second.client.get(f"/v1/apps/{app_id}", headers=headers).status_code == 200
        key_id = first.client.get("/v1/auth/keys", headers=headers).json()[0]["key_id"]
        assert first.client.delete(f"/v1/auth/keys/{key_id}", headers=headers).status_code == 200
        for path in (f"/v1/apps/{app_id}", "/v1/apps"):
            after = second.client.get(path, headers=headers)
            assert after.status_code == 401 and after.json()["code"] == "api_key_revoked"
    finally:
        for kit in (first, second):
            kit.client.close()
            if kit.state.pg_reads is not None:
                kit.state.pg_reads.close()
            kit.state.engine.dispose()


def test_hot_read_sql_translates_parameters_for_psycopg() -> None:
    read = HotRead("SELECT :a::text, x FROM t WHERE y = :b_2 AND z = ':'")
    assert read.pg == "SELECT %(a)s::text, x FROM t WHERE y = %(b_2)s AND z = ':'"


def test_postgres_reads_reuse_connections_and_drop_broken_ones(cloud: CloudKit) -> None:
    reads = cloud.state.pg_reads
    if cloud.state.engine.dialect.name != "postgresql":
        assert reads is None  # SQLite reads run inline on the loop
        return
    assert reads is not None
    pid = HotRead("SELECT pg_backend_pid() AS pid")
    boom = HotRead("SELECT 1 / :zero AS x")

    async def run() -> None:
        first = (await reads.fetch(pid, {}))[0].pid
        assert (await reads.fetch(pid, {}))[0].pid == first  # kept, not reopened
        try:
            await reads.fetch(boom, {"zero": 0})
        except Exception as error:
            assert "division by zero" in str(error)
        else:
            raise AssertionError("division by zero did not fail")
        assert (await reads.fetch(pid, {}))[0].pid != first  # the failed one was dropped

    asyncio.run(run())
    reads.close()
