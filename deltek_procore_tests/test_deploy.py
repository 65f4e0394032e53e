"""deploy/: the N-tenant examples are valid and agree with each other and with the code.

The profile itself is loaded on PostgreSQL by defs/test_production_instance.py and run with
the daemon by defs/test_tenant_isolation.py; here: the example tenants file loads, its
secrets file names exactly the per-tenant variables each tenant reads, and the commented
run-launcher blocks are valid YAML that forward those variables.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from deltek_procore.tenant_admin import SECRET_VARIABLES
from deltek_procore.tenants import TENANT_VARIABLES, TENANTS_ENV, clear_cache, load_tenants

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
SECRET_BASES = set(SECRET_VARIABLES)


def _env_example() -> dict[str, str]:
    out = {}
    for line in (DEPLOY / "tenants.env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            out[key.strip()] = value
    return out


def _commented_block(marker: str) -> dict:
    """The commented-out `run_launcher:` block after the line containing `marker`."""
    lines = (DEPLOY / "dagster.postgres.yaml").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if marker in line) + 1
    block = []
    for line in lines[start:]:
        if not line.startswith("#") or line.startswith("# ---"):
            break
        block.append(line[2:] if line.startswith("# ") else line[1:])
    return yaml.safe_load("\n".join(block))


def test_example_tenants_file_loads():
    clear_cache()
    tenants = load_tenants({TENANTS_ENV: str(DEPLOY / "tenants.example.yaml")})
    assert [t.name for t in tenants] == ["acme", "bolt"]
    assert all(not t.implicit and t.key_prefix == [t.name] for t in tenants)
    assert tenants[0].mappings == str(DEPLOY / "acme.mappings.yaml")
    assert {t.timezone for t in tenants} == {"America/Chicago", "America/New_York"}


def test_secrets_example_names_each_tenants_own_variables():
    clear_cache()
    tenants = load_tenants({TENANTS_ENV: str(DEPLOY / "tenants.example.yaml")})
    names = set(_env_example())
    suffixed = {n for n in names if re.search(r"__[A-Z0-9_]+$", n)}
    assert suffixed, "no per-tenant variable in tenants.env.example"
    for name in suffixed:
        base = name.rsplit("__", 1)[0]
        assert base in TENANT_VARIABLES, f"{name}: {base} is not a per-tenant variable"
    for tenant in tenants:
        own = {n.rsplit("__", 1)[0] for n in suffixed if n.endswith(tenant.suffix())}
        assert own >= SECRET_BASES | {"DELTEK_PROCORE_WEBHOOK_SECRET"}, tenant.name
    # each tenant sees its own values under the contract's names, never the other's
    env = {n: f"value-of-{n}" for n in names}
    acme, bolt = tenants
    seen = acme.environment(env)
    assert seen["DELTEK_PASSWORD"] == "value-of-DELTEK_PASSWORD__ACME"
    assert "value-of-DELTEK_PASSWORD__BOLT" not in seen.values()
    assert bolt.environment(env)["DELTEK_API_URL"] == "https://bolt.deltekfirst.com/BOLT/api"
    assert seen[TENANTS_ENV] == env[TENANTS_ENV]  # deployment-wide settings are shared


def test_commented_run_launchers_are_valid_and_forward_the_tenant_secrets():
    docker = _commented_block("--- Docker")["run_launcher"]
    assert (docker["module"], docker["class"]) == ("dagster_docker", "DockerRunLauncher")
    forwarded = set(docker["config"]["env_vars"])
    secrets = {n for n in _env_example() if "__" in n and n.rsplit("__", 1)[0] in SECRET_BASES}
    assert secrets <= forwarded, sorted(secrets - forwarded)
    assert {"DELTEK_PROCORE_TENANTS", "DELTEK_PROCORE_STATE_URL"} <= forwarded
    k8s = _commented_block("--- Kubernetes")["run_launcher"]
    assert (k8s["module"], k8s["class"]) == ("dagster_k8s", "K8sRunLauncher")
    assert k8s["config"]["env_secrets"] == ["deltek-procore-acme", "deltek-procore-bolt"]


def test_profile_limits_one_run_per_tenant_tag():
    from deltek_procore.defs.jobs import TENANT_TAG

    profile = yaml.safe_load((DEPLOY / "dagster.postgres.yaml").read_text())
    assert profile["run_coordinator"]["class"] == "QueuedRunCoordinator"
    (limit,) = profile["concurrency"]["runs"]["tag_concurrency_limits"]
    assert limit == {"key": TENANT_TAG, "value": {"applyLimitPerUniqueValue": True}, "limit": 1}
    assert profile["concurrency"]["pools"]["default_limit"] == 1
