"""Encrypted credential store: one Fernet-encrypted JSON blob per system in a SQL table.

Only ciphertext reaches the database. The key comes from ``DELTEK_PROCORE_MASTER_KEY`` (a
Fernet key) or from a key file created on first use with mode 0600 (default
``$DAGSTER_HOME/.deltek_procore.key``, or ``~/.deltek_procore.key`` without DAGSTER_HOME).
An environment variable always wins over a stored value (:meth:`CredentialStore.resolve`).

Each tenant (deltek_procore.tenants) has its own rows; a store reads and writes only its
tenant's. The system and tenant names are encrypted along with the values and checked on read,
so a ciphertext copied to another row is refused rather than handed to the wrong system or
company. The table lives in the state database and is migrated with it
(deltek_procore.state.migrate).
"""

from __future__ import annotations

import json
import logging
import os
import stat
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy.engine import URL, Engine
from sqlalchemy.exc import IntegrityError

from deltek_procore.state import migrate, schema

log = logging.getLogger(__name__)

System = Literal["procore", "deltek"]
MASTER_KEY_ENV = "DELTEK_PROCORE_MASTER_KEY"
KEY_FILE_NAME = ".deltek_procore.key"
TABLE_NAME = "credentials"

#: Credential names per system: the configuration-contract environment variables.
NAMES: dict[str, tuple[str, ...]] = {
    "procore": (
        "PROCORE_CLIENT_ID",
        "PROCORE_CLIENT_SECRET",
        "PROCORE_COMPANY_ID",
        "PROCORE_AUTH_URL",
        "PROCORE_API_URL",
    ),
    "deltek": (
        "DELTEK_API_URL",
        "DELTEK_USERNAME",
        "DELTEK_PASSWORD",
        "DELTEK_DATABASE",
        "DELTEK_CLIENT_ID",
        "DELTEK_CLIENT_SECRET",
    ),
}
#: Documented defaults (README, "Configuration"); not applied by ``resolve``, offered to callers.
DEFAULTS: dict[str, str] = {
    "PROCORE_AUTH_URL": "https://login.procore.com/oauth/token",
    "PROCORE_API_URL": "https://api.procore.com",
}

credentials_table = schema.credentials


class CredentialsError(Exception):
    """Credentials cannot be stored or read; the message never holds a secret."""


class MasterKeyError(CredentialsError):
    """The master key is malformed, missing, or not the one the stored credentials were
    encrypted with. The message names the key's source (the variable or the key file's path),
    never the key, and says how to fix it."""


def default_key_file(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    home = env.get("DAGSTER_HOME")
    return (Path(home) if home else Path.home()) / KEY_FILE_NAME


def _check_system(system: str) -> str:
    if system not in NAMES:
        raise CredentialsError(f"unknown system {system!r}; expected one of {', '.join(NAMES)}")
    return system


_GENERATE = (
    "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
)


def _set_command(system: str, tenant: str = "default") -> str:
    scope = "" if tenant == "default" else f" --tenant {tenant}"
    return f"`deltek-procore credentials set {system}{scope}`"


def _store_again(tenant: str) -> str:
    return f"{_set_command('procore', tenant)} (and `... deltek`)"


def _fernet(key: bytes | str, source: str, tenant: str = "default") -> Fernet:
    try:
        return Fernet(key)
    except (ValueError, TypeError):
        raise MasterKeyError(
            f"{source} is malformed: not a valid Fernet key (32 url-safe base64-encoded bytes), "
            "so it cannot decrypt the stored credentials; set it to the key the credentials "
            f"were stored with, or generate a new key with: {_GENERATE} and store the "
            f"credentials again with {_store_again(tenant)}"
        ) from None


class CredentialStore:
    """Encrypted ``procore`` / ``deltek`` credential sets in a SQL database.

    ``url`` is a SQLAlchemy URL (or an Engine to share one). ``key`` overrides both the
    environment and the key file; ``key_file`` overrides the default key file path.
    ``tenant`` scopes every read and write to that tenant's rows (deltek_procore.tenants).
    """

    def __init__(
        self,
        url: str | URL | Engine,
        key: bytes | str | None = None,
        *,
        key_file: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        tenant: str = "default",
    ):
        self._env = os.environ if env is None else env
        self.tenant = tenant
        self.engine = url if isinstance(url, Engine) else sa.create_engine(url)
        self.key_file = Path(key_file) if key_file is not None else default_key_file(self._env)
        self._key = key
        self._cipher: Fernet | None = None
        self._key_source = ""
        self._table_ready = False

    def __repr__(self) -> str:
        url = self.engine.url.render_as_string(hide_password=True)
        scope = "" if self.tenant == "default" else f", tenant={self.tenant!r}"
        return f"CredentialStore(url={url!r}, key_file={str(self.key_file)!r}{scope})"

    # ------------------------------------------------------------------ key handling

    def _cipher_for(self, create: bool) -> Fernet | None:
        if self._cipher is not None:
            return self._cipher
        if self._key is not None:
            self._key_source, raw = "the key passed to CredentialStore", self._key
        elif self._env.get(MASTER_KEY_ENV):
            self._key_source, raw = MASTER_KEY_ENV, self._env[MASTER_KEY_ENV].strip()
        else:
            self._key_source = f"the key file {self.key_file}"
            raw = self._read_key_file(create)
            if raw is None:
                return None
        self._cipher = _fernet(raw, self._key_source, self.tenant)
        return self._cipher

    def _wrong_key(self, system: str) -> MasterKeyError:
        """Why the key in use cannot read ``system``'s row, and the two ways out."""
        if self._key_source == MASTER_KEY_ENV:
            fix = f"set {MASTER_KEY_ENV} to the key they were stored with"
        elif self._key_source.startswith("the key file"):
            fix = (
                f"restore the key file they were stored with (or set {MASTER_KEY_ENV} to that key)"
            )
        else:
            fix = "pass the key they were stored with"
        return MasterKeyError(
            f"{self._key_source} does not decrypt the stored {system} credentials (they were "
            f"stored with another key): {fix}, or store them again with "
            f"{_set_command(system, self.tenant)}"
        )

    def _read_key_file(self, create: bool) -> bytes | None:
        path = self.key_file
        if not path.exists():
            if not create:
                return None
            self._create_key_file(path)
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            log.warning("key file %s is readable by others (mode %o); chmod 600 it", path, mode)
        for _ in range(50):  # another process may be writing it right now
            raw = path.read_bytes().strip()
            if raw:
                return raw
            time.sleep(0.02)
        raise MasterKeyError(
            f"the key file {path} is empty, so it cannot decrypt the stored credentials; "
            "restore the key they were stored with, or delete the file and store them again "
            f"with {_store_again(self.tenant)}"
        )

    @staticmethod
    def _create_key_file(path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return  # created concurrently; read it
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, Fernet.generate_key() + b"\n")
        finally:
            os.close(fd)
        log.info("created credentials key file %s (mode 600); back it up", path)

    # ------------------------------------------------------------------ table

    def _ensure_table(self) -> None:
        """The credentials table at the state schema's newest revision (an older one is
        upgraded, its rows kept as tenant ``default``)."""
        if not self._table_ready:
            migrate.upgrade(self.engine)
            self._table_ready = True

    def _row(self, system: str) -> sa.ColumnElement[bool]:
        t = credentials_table
        return sa.and_(t.c.tenant == self.tenant, t.c.name == system)

    # ------------------------------------------------------------------ API

    def set(self, system: System, values: Mapping[str, str]) -> None:
        """Replace the stored credential set of ``system`` (names: :data:`NAMES`)."""
        _check_system(system)
        unknown = sorted(set(values) - set(NAMES[system]))
        if unknown:
            raise CredentialsError(
                f"unknown {system} credential name(s) {', '.join(unknown)}; "
                f"expected: {', '.join(NAMES[system])}"
            )
        bad = sorted(k for k, v in values.items() if not isinstance(v, str))
        if bad:
            raise CredentialsError(f"{system} credential(s) {', '.join(bad)} must be text")
        cipher = self._cipher_for(create=True)
        assert cipher is not None
        payload = json.dumps(
            {"system": system, "tenant": self.tenant, "values": dict(values)}, sort_keys=True
        )
        token = cipher.encrypt(payload.encode("utf-8")).decode("ascii")
        self._ensure_table()
        now = datetime.now(timezone.utc)
        t = credentials_table
        for _ in range(2):
            with self.engine.begin() as conn:
                done = conn.execute(
                    sa.update(t).where(self._row(system)).values(ciphertext=token, updated_at=now)
                ).rowcount
                if done:
                    return
                try:
                    conn.execute(
                        sa.insert(t).values(
                            tenant=self.tenant, name=system, ciphertext=token, updated_at=now
                        )
                    )
                    return
                except IntegrityError:
                    pass  # inserted concurrently: update it on the second pass
        raise CredentialsError(f"could not store {system} credentials (concurrent writers)")

    def get(self, system: System) -> dict[str, str] | None:
        """The stored credential set of ``system``, or None when none is stored."""
        _check_system(system)
        self._ensure_table()
        t = credentials_table
        with self.engine.connect() as conn:
            token = conn.execute(sa.select(t.c.ciphertext).where(self._row(system))).scalar()
        if token is None:
            return None
        cipher = self._cipher_for(create=False)
        if cipher is None:
            raise MasterKeyError(
                f"stored credentials for {system} exist but there is no key to decrypt them: "
                f"{MASTER_KEY_ENV} is not set and the key file {self.key_file} does not exist; "
                f"set {MASTER_KEY_ENV} or restore the key file with the key they were stored "
                f"with, or store them again with {_set_command(system, self.tenant)}"
            )
        try:
            data = json.loads(cipher.decrypt(token.encode("ascii")))
        except (InvalidToken, ValueError):
            raise self._wrong_key(system) from None
        if not isinstance(data, dict) or data.get("system") != system:
            raise CredentialsError(f"stored credentials row {system!r} belongs to another system")
        # rows written before tenants carry no tenant: the migration made them 'default'
        if data.get("tenant", "default") != self.tenant:
            raise CredentialsError(
                f"stored {system} credentials of tenant {self.tenant!r} belong to another tenant"
            )
        return {str(k): str(v) for k, v in data.get("values", {}).items()}

    def delete(self, system: System) -> bool:
        """Forget the stored credential set; True when there was one."""
        _check_system(system)
        self._ensure_table()
        t = credentials_table
        with self.engine.begin() as conn:
            return bool(conn.execute(sa.delete(t).where(self._row(system))).rowcount)

    def resolve(self, system: System, env: Mapping[str, str] | None = None) -> dict[str, str]:
        """Stored values overlaid with the environment (a non-empty variable wins). The store
        is not read at all when the environment supplies every name."""
        _check_system(system)
        env = self._env if env is None else env
        from_env = {n: env[n] for n in NAMES[system] if env.get(n)}
        if len(from_env) == len(NAMES[system]):
            return from_env
        stored = self.get(system) or {}
        return {**stored, **from_env}
