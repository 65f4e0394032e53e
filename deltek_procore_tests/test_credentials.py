from __future__ import annotations

import os
import stat
import uuid

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from deltek_procore.credentials import (
    KEY_FILE_NAME,
    MASTER_KEY_ENV,
    NAMES,
    CredentialsError,
    CredentialStore,
    MasterKeyError,
    default_key_file,
)

SECRET = "s3cr3t-Procore-value-9f8e7d"
PROCORE = {
    "PROCORE_CLIENT_ID": "client-abc",
    "PROCORE_CLIENT_SECRET": SECRET,
    "PROCORE_COMPANY_ID": "4264800",
}
DELTEK = {"DELTEK_USERNAME": "apiuser", "DELTEK_PASSWORD": "pw-" + SECRET}


def sqlite_store(tmp_path, **kwargs) -> CredentialStore:
    kwargs.setdefault("key_file", tmp_path / "home" / KEY_FILE_NAME)
    kwargs.setdefault("env", {})
    return CredentialStore(f"sqlite:///{tmp_path / 'state.db'}", **kwargs)


def test_round_trip_and_replace(tmp_path):
    store = sqlite_store(tmp_path)
    assert store.get("procore") is None
    store.set("procore", PROCORE)
    store.set("deltek", DELTEK)
    assert store.get("procore") == PROCORE
    assert store.get("deltek") == DELTEK
    store.set("procore", {"PROCORE_CLIENT_ID": "other"})  # set replaces the whole set
    assert store.get("procore") == {"PROCORE_CLIENT_ID": "other"}
    # a second store on the same database and key file reads the same values
    again = sqlite_store(tmp_path)
    assert again.get("deltek") == DELTEK
    assert again.delete("deltek") is True
    assert again.delete("deltek") is False
    assert store.get("deltek") is None


def test_key_file_created_on_first_write_with_mode_0600(tmp_path):
    store = sqlite_store(tmp_path)
    key_file = tmp_path / "home" / KEY_FILE_NAME
    assert store.get("procore") is None
    assert not key_file.exists()  # reading an empty store creates no key
    store.set("procore", PROCORE)
    assert key_file.exists()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    Fernet(key_file.read_bytes().strip())  # a valid Fernet key


def test_loose_key_file_permissions_are_warned_about(tmp_path, caplog):
    key_file = tmp_path / "home" / KEY_FILE_NAME
    key_file.parent.mkdir()
    key_file.write_bytes(Fernet.generate_key())
    key_file.chmod(0o644)
    store = sqlite_store(tmp_path)
    with caplog.at_level("WARNING", logger="deltek_procore.credentials"):
        store.set("procore", PROCORE)
    assert "readable by others" in caplog.text
    assert key_file.read_bytes().decode() not in caplog.text
    assert store.get("procore") == PROCORE


def test_default_key_file_under_dagster_home(tmp_path):
    assert default_key_file({"DAGSTER_HOME": str(tmp_path)}) == tmp_path / KEY_FILE_NAME
    store = CredentialStore(
        f"sqlite:///{tmp_path / 'x.db'}", env={"DAGSTER_HOME": str(tmp_path / "dh")}
    )
    store.set("deltek", DELTEK)
    assert (tmp_path / "dh" / KEY_FILE_NAME).exists()


def test_only_ciphertext_reaches_the_database(tmp_path):
    store = sqlite_store(tmp_path)
    store.set("procore", PROCORE)
    store.set("deltek", DELTEK)
    store.engine.dispose()
    raw = (tmp_path / "state.db").read_bytes()
    key = (tmp_path / "home" / KEY_FILE_NAME).read_bytes().strip()
    assert b"credentials" in raw  # the table is there
    for needle in (SECRET, "client-abc", "apiuser", "4264800"):
        assert needle.encode() not in raw
    assert key not in raw
    with store.engine.connect() as conn:
        rows = conn.execute(sa.text("select name, ciphertext from credentials")).all()
    assert {r[0] for r in rows} == {"procore", "deltek"}
    assert all(r[1].startswith("gAAAA") for r in rows)  # Fernet tokens


def test_wrong_key_gives_a_clear_error_without_secrets(tmp_path):
    sqlite_store(tmp_path).set("procore", PROCORE)
    other_key = Fernet.generate_key()
    store = sqlite_store(tmp_path, env={MASTER_KEY_ENV: other_key.decode()})
    with pytest.raises(MasterKeyError) as info:
        store.get("procore")
    msg = str(info.value)
    assert msg.startswith(f"{MASTER_KEY_ENV} does not decrypt the stored procore credentials")
    assert f"set {MASTER_KEY_ENV} to the key they were stored with" in msg
    assert "store them again with `deltek-procore credentials set procore`" in msg
    assert SECRET not in msg and other_key.decode() not in msg
    assert info.value.__suppress_context__  # the InvalidToken chain is not shown


def test_replaced_key_file_is_named_by_its_path(tmp_path):
    sqlite_store(tmp_path).set("deltek", DELTEK)
    key_file = tmp_path / "home" / KEY_FILE_NAME
    key_file.write_bytes(Fernet.generate_key())
    with pytest.raises(MasterKeyError) as info:
        sqlite_store(tmp_path).get("deltek")
    msg = str(info.value)
    assert msg.startswith(f"the key file {key_file} does not decrypt the stored deltek")
    assert "restore the key file they were stored with" in msg
    assert "`deltek-procore credentials set deltek`" in msg
    assert key_file.read_text().strip() not in msg


def test_empty_key_file_is_a_key_problem(tmp_path):
    sqlite_store(tmp_path).set("deltek", DELTEK)
    key_file = tmp_path / "home" / KEY_FILE_NAME
    key_file.write_bytes(b"")
    with pytest.raises(MasterKeyError, match=f"the key file {key_file} is empty"):
        sqlite_store(tmp_path).get("deltek")


def test_master_key_env_and_explicit_key(tmp_path):
    key = Fernet.generate_key()
    env = {MASTER_KEY_ENV: key.decode()}
    store = sqlite_store(tmp_path, env=env)
    store.set("procore", PROCORE)
    assert not (tmp_path / "home" / KEY_FILE_NAME).exists()  # env key: no key file
    assert sqlite_store(tmp_path, key=key).get("procore") == PROCORE
    assert sqlite_store(tmp_path, key=key.decode()).get("procore") == PROCORE


def test_invalid_master_key_is_named_not_echoed(tmp_path):
    bogus = "not-a-fernet-key-" + SECRET
    store = sqlite_store(tmp_path, env={MASTER_KEY_ENV: bogus})
    with pytest.raises(MasterKeyError) as info:
        store.set("procore", PROCORE)
    msg = str(info.value)
    assert msg.startswith(f"{MASTER_KEY_ENV} is malformed: not a valid Fernet key")
    assert "set it to the key the credentials were stored with" in msg
    assert "deltek-procore credentials set procore" in msg
    assert bogus not in msg


def test_malformed_key_file_is_named_by_its_path(tmp_path):
    sqlite_store(tmp_path).set("procore", PROCORE)
    key_file = tmp_path / "home" / KEY_FILE_NAME
    key_file.write_text("garbage-" + SECRET)
    with pytest.raises(MasterKeyError) as info:
        sqlite_store(tmp_path).get("procore")
    assert str(info.value).startswith(f"the key file {key_file} is malformed")
    assert SECRET not in str(info.value)


def test_rows_without_a_key_say_so(tmp_path):
    sqlite_store(tmp_path).set("procore", PROCORE)
    lost = sqlite_store(tmp_path, key_file=tmp_path / "elsewhere" / KEY_FILE_NAME)
    with pytest.raises(MasterKeyError, match="there is no key") as info:
        lost.get("procore")
    assert str(tmp_path / "elsewhere" / KEY_FILE_NAME) in str(info.value)
    assert "credentials set procore" in str(info.value)
    assert not (tmp_path / "elsewhere" / KEY_FILE_NAME).exists()


def test_rows_are_bound_to_their_system(tmp_path):
    store = sqlite_store(tmp_path)
    store.set("procore", PROCORE)
    store.set("deltek", DELTEK)
    with store.engine.begin() as conn:
        token = conn.execute(sa.text("select ciphertext from credentials where name='procore'"))
        conn.execute(
            sa.text("update credentials set ciphertext=:t where name='deltek'"),
            {"t": token.scalar()},
        )
    with pytest.raises(CredentialsError, match="belongs to another system"):
        store.get("deltek")


def test_validation_of_system_and_names(tmp_path):
    store = sqlite_store(tmp_path)
    with pytest.raises(CredentialsError, match="unknown system"):
        store.set("sage", {})  # type: ignore[arg-type]
    with pytest.raises(CredentialsError, match="PROCORE_TOKEN") as info:
        store.set("procore", {"PROCORE_TOKEN": SECRET})
    assert SECRET not in str(info.value)
    with pytest.raises(CredentialsError, match="must be text"):
        store.set("procore", {"PROCORE_COMPANY_ID": 4264800})  # type: ignore[dict-item]


def test_resolve_environment_wins(tmp_path):
    store = sqlite_store(tmp_path)
    store.set("procore", PROCORE)
    env = {"PROCORE_CLIENT_ID": "from-env", "PROCORE_API_URL": "http://127.0.0.1:9", "OTHER": "x"}
    assert store.resolve("procore", env) == {**PROCORE, **{k: env[k] for k in env if k != "OTHER"}}
    assert store.resolve("procore", {"PROCORE_CLIENT_ID": ""}) == PROCORE  # empty = unset
    assert store.resolve("deltek", {}) == {}


def test_resolve_does_not_need_the_store_when_env_has_everything(tmp_path):
    sqlite_store(tmp_path).set("deltek", DELTEK)
    env = {name: f"v-{name}" for name in NAMES["deltek"]}
    env[MASTER_KEY_ENV] = Fernet.generate_key().decode()  # wrong key: store would fail
    store = sqlite_store(tmp_path, env=env)
    assert store.resolve("deltek") == {n: f"v-{n}" for n in NAMES["deltek"]}
    with pytest.raises(CredentialsError):
        store.resolve("deltek", {})


def test_repr_hides_password_and_key(tmp_path):
    key = Fernet.generate_key()
    store = CredentialStore("postgresql+psycopg2://u:hunter2pw@127.0.0.1:1/x", key=key, env={})
    text = repr(store)
    assert "hunter2pw" not in text and key.decode() not in text and "***" in text


# ------------------------------------------------------------------ PostgreSQL

PG_DEFAULT = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"


def pg_url() -> str:
    """The test PostgreSQL URL; skips when no server answers, fails instead when CI=true."""
    url = os.environ.get("DELTEK_PROCORE_TEST_PG_URL", PG_DEFAULT)
    try:
        engine = sa.create_engine(url, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
        engine.dispose()
    except Exception as exc:  # any failure to connect means "no server"
        reason = f"no PostgreSQL server at {url}: {type(exc).__name__}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return url


@pytest.mark.postgres
def test_store_on_postgresql(tmp_path):
    url = pg_url()
    schema = f"cred_test_{uuid.uuid4().hex[:12]}"  # private schema: same table name, no clashes
    admin = sa.create_engine(url)
    with admin.begin() as conn:
        conn.execute(sa.text(f'create schema "{schema}"'))
    engine = sa.create_engine(url, connect_args={"options": f"-csearch_path={schema}"})
    try:
        store = CredentialStore(engine, key_file=tmp_path / KEY_FILE_NAME, env={})
        assert store.get("procore") is None
        store.set("procore", PROCORE)
        store.set("procore", {**PROCORE, "PROCORE_COMPANY_ID": "1"})
        assert store.get("procore")["PROCORE_COMPANY_ID"] == "1"
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text("select name, ciphertext, updated_at from credentials")
            ).all()
        assert len(rows) == 1 and rows[0][0] == "procore"
        assert SECRET not in rows[0][1] and rows[0][2].tzinfo is not None
        wrong = CredentialStore(engine, key=Fernet.generate_key(), env={})
        with pytest.raises(MasterKeyError, match="does not decrypt the stored procore"):
            wrong.get("procore")
        assert store.delete("procore")
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(sa.text(f'drop schema "{schema}" cascade'))
        admin.dispose()


# ------------------------------------------------------------------ tenants


def _tenant_isolation(engine_or_url, key_file) -> None:
    acme = CredentialStore(engine_or_url, key_file=key_file, env={}, tenant="acme")
    globex = CredentialStore(engine_or_url, key_file=key_file, env={}, tenant="globex")
    default = CredentialStore(engine_or_url, key_file=key_file, env={})
    acme.set("procore", PROCORE)
    globex.set("procore", {**PROCORE, "PROCORE_CLIENT_SECRET": "globex-only-secret"})
    assert acme.get("procore") == PROCORE
    assert globex.get("procore")["PROCORE_CLIENT_SECRET"] == "globex-only-secret"
    assert default.get("procore") is None and acme.get("deltek") is None
    assert globex.delete("procore") is True
    assert globex.get("procore") is None and acme.get("procore") == PROCORE
    with acme.engine.connect() as conn:
        rows = conn.execute(sa.text("select tenant, name from credentials")).all()
    assert [tuple(r) for r in rows] == [("acme", "procore")]


def test_credentials_are_stored_per_tenant(tmp_path):
    _tenant_isolation(f"sqlite:///{tmp_path / 'state.db'}", tmp_path / KEY_FILE_NAME)


def test_a_ciphertext_copied_to_another_tenant_is_refused(tmp_path):
    url, key_file = f"sqlite:///{tmp_path / 'state.db'}", tmp_path / KEY_FILE_NAME
    acme = CredentialStore(url, key_file=key_file, env={}, tenant="acme")
    globex = CredentialStore(url, key_file=key_file, env={}, tenant="globex")
    acme.set("deltek", DELTEK)
    globex.set("deltek", {"DELTEK_USERNAME": "g"})
    with acme.engine.begin() as conn:
        conn.execute(
            sa.text(
                "update credentials set ciphertext = (select ciphertext from credentials"
                " where tenant = 'acme') where tenant = 'globex'"
            )
        )
    with pytest.raises(CredentialsError, match="belong to another tenant") as info:
        globex.get("deltek")
    assert SECRET not in str(info.value)


def test_messages_name_the_tenant_to_store_again(tmp_path):
    CredentialStore(
        f"sqlite:///{tmp_path / 's.db'}", key_file=tmp_path / "k", env={}, tenant="acme"
    ).set("deltek", DELTEK)
    wrong = CredentialStore(
        f"sqlite:///{tmp_path / 's.db'}", key=Fernet.generate_key(), env={}, tenant="acme"
    )
    with pytest.raises(MasterKeyError) as info:
        wrong.get("deltek")
    assert "`deltek-procore credentials set deltek --tenant acme`" in str(info.value)
    assert "tenant='acme'" in repr(wrong)


@pytest.mark.postgres
def test_credentials_are_stored_per_tenant_on_postgresql(tmp_path):
    url = pg_url()
    schema = f"cred_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(url)
    with admin.begin() as conn:
        conn.execute(sa.text(f'create schema "{schema}"'))
    engine = sa.create_engine(url, connect_args={"options": f"-csearch_path={schema}"})
    try:
        _tenant_isolation(engine, tmp_path / KEY_FILE_NAME)
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(sa.text(f'drop schema "{schema}" cascade'))
        admin.dispose()
