"""cron/: Kubernetes manifests (schema-valid, deadlines, hardening, secrets as files), the cron.d
line, the Containerfile, and sql/mysql/grants.sql. Offline: kubernetes-validate bundles its schemas."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from drainer import __version__, defaults
from drainer.config import read_config_files, split_amqp_urls
from tests.conftest import require_module

ROOT = Path(__file__).resolve().parents[2]
CRON = ROOT / "cron"
K8S = CRON / "kubernetes"
MANIFESTS = sorted(K8S.glob("*.yaml"))
GRANTS = ROOT / "sql" / "mysql" / "grants.sql"

# The oldest Kubernetes the manifests target, and the newest the installed validator knows.
K8S_VERSIONS = ("1.30", "latest")
# Fetching the last batch, ack, lease release, summary line and exit (see cronjob.yaml).
EXIT_MARGIN_S = 10
SECRET_DIR = "/etc/vitrage-drainer/secrets"
# scheme://user:password@ : a credential inside a URL.
URL_WITH_PASSWORD = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]*:[^@/\s]*@", re.IGNORECASE)


def load(path: Path) -> list[dict[str, Any]]:
    yaml = require_module("yaml")
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def one(name: str, kind: str) -> dict[str, Any]:
    docs = [d for d in load(K8S / name) if d["kind"] == kind]
    assert len(docs) == 1, f"{name}: expected one {kind}"
    return docs[0]


def job_spec(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["spec"]["jobTemplate"]["spec"] if doc["kind"] == "CronJob" else doc["spec"]


def pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    return job_spec(doc)["template"]["spec"]


def workloads() -> Iterator[tuple[str, dict[str, Any]]]:
    for path in MANIFESTS:
        for doc in load(path):
            if doc["kind"] in ("CronJob", "Job"):
                yield path.name, doc


def setting(container: dict[str, Any], name: str, default: float) -> float:
    """A drain setting as the container gets it: flag > DRAINER_<NAME> env > default."""
    args = [*container.get("command", []), *container.get("args", [])]
    flag = "--" + name.replace("_", "-")
    for i, arg in enumerate(args):
        if arg == flag:
            return float(args[i + 1])
        if arg.startswith(flag + "="):
            return float(arg.split("=", 1)[1])
    env = {e["name"]: e.get("value") for e in container.get("env", [])}
    value = env.get("DRAINER_" + name.upper())
    return float(value) if value is not None else default


def worst_case_seconds(max_s: float, retry_s: float, socket_s: float) -> float:
    """Latest moment a run can still be busy: last batch starts at max, retries, one read in flight."""
    return max_s + retry_s + socket_s + EXIT_MARGIN_S


def test_manifest_set() -> None:
    names = {p.name for p in MANIFESTS}
    assert names == {
        "cronjob.yaml",
        "job-maintenance.yaml",
        "job-migrate.yaml",
        "secret.example.yaml",
        "configmap.example.yaml",
    }


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_manifest_validates_strict(path: Path, version: str) -> None:
    kv = require_module("kubernetes_validate")
    version = kv.latest_version() if version == "latest" else version
    docs = load(path)
    assert docs, f"{path.name} holds no document"
    for doc in docs:
        try:
            # Raises SchemaNotFoundError for an unknown kind/apiVersion (the CLI only warns).
            kv.validate(doc, version, strict=True)
        except kv.ValidationError as exc:
            where = ".".join(str(p) for p in exc.path)
            pytest.fail(f"{path.name} {doc['kind']}/{doc['metadata']['name']} @ {where}: {exc.message}")


def test_kubernetes_validate_cli_strict() -> None:
    require_module("kubernetes_validate")
    result = subprocess.run(
        [sys.executable, "-m", "kubernetes_validate", "--strict", "--quiet", "-k", "1.30", *map(str, MANIFESTS)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARN" not in result.stdout and "ERROR" not in result.stdout, result.stdout


def test_cronjob_schedule_and_policies() -> None:
    cron = one("cronjob.yaml", "CronJob")
    spec, job = cron["spec"], job_spec(cron)
    assert spec["schedule"] == "* * * * *"
    assert spec["concurrencyPolicy"] == "Forbid"
    assert 0 < spec["startingDeadlineSeconds"] < 60  # a late run is skipped, not stacked
    assert spec["successfulJobsHistoryLimit"] >= 1 and spec["failedJobsHistoryLimit"] >= 1
    assert job["backoffLimit"] in (0, 1)
    assert job["ttlSecondsAfterFinished"] > 0
    pod = pod_spec(cron)
    assert pod["terminationGracePeriodSeconds"] == 30
    (container,) = pod["containers"]
    assert container["command"] == ["vitrage-drainer"]
    assert container["args"][:2] == ["drain", "--until-empty"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["DRAINER_LOG_FORMAT"] == "json"
    assert "DRAINER_PUSHGATEWAY" in env


@pytest.mark.parametrize("name", ["cronjob.yaml", "job-maintenance.yaml"])
def test_drain_stops_before_the_deadline(name: str) -> None:
    (doc,) = [d for n, d in workloads() if n == name]
    (container,) = pod_spec(doc)["containers"]
    max_s = setting(container, "max_seconds", defaults.MAX_SECONDS)
    retry_s = setting(container, "retry_seconds", defaults.RETRY_SECONDS)
    socket_s = setting(container, "socket_timeout", defaults.SOCKET_TIMEOUT)
    deadline = job_spec(doc)["activeDeadlineSeconds"]
    assert deadline > max_s + retry_s
    assert deadline > worst_case_seconds(max_s, retry_s, socket_s), (
        f"{name}: activeDeadlineSeconds {deadline} <= {max_s:g} max + {retry_s:g} retry "
        f"+ {socket_s:g} socket + {EXIT_MARGIN_S} margin"
    )


def test_cronjob_finishes_within_a_schedule_slot_bound() -> None:
    # Deadline + grace: the longest a run can keep Forbid from starting the next one.
    cron = one("cronjob.yaml", "CronJob")
    assert job_spec(cron)["activeDeadlineSeconds"] + pod_spec(cron)["terminationGracePeriodSeconds"] <= 180


def test_maintenance_job_drains_big_batches() -> None:
    job = one("job-maintenance.yaml", "Job")
    (container,) = pod_spec(job)["containers"]
    assert container["args"][:2] == ["drain", "--until-empty"]
    assert setting(container, "max_seconds", 0) == 1800
    assert setting(container, "batch_size", 0) == 5000
    cron = one("cronjob.yaml", "CronJob")
    assert job_spec(job)["activeDeadlineSeconds"] > job_spec(cron)["activeDeadlineSeconds"]


@pytest.mark.parametrize("name", ["cronjob.yaml", "job-maintenance.yaml", "job-migrate.yaml"])
def test_pod_hardening(name: str) -> None:
    (doc,) = [d for n, d in workloads() if n == name]
    pod = pod_spec(doc)
    assert pod["restartPolicy"] == "Never"
    assert pod.get("automountServiceAccountToken") is False
    pod_sc = pod.get("securityContext", {})
    assert pod_sc.get("seccompProfile", {}).get("type") == "RuntimeDefault"
    for container in pod["containers"]:
        sc = {**pod_sc, **container.get("securityContext", {})}
        assert sc.get("runAsNonRoot") is True
        assert sc.get("runAsUser") == 10001
        assert sc.get("readOnlyRootFilesystem") is True
        assert sc.get("allowPrivilegeEscalation") is False
        assert sc.get("capabilities", {}).get("drop") == ["ALL"]
        assert container["image"] == f"vitrage-drainer:{__version__}"
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(container["resources"][kind]), f"{name}: resources.{kind}"


@pytest.mark.parametrize("name", ["cronjob.yaml", "job-maintenance.yaml", "job-migrate.yaml"])
def test_no_secret_in_argv_or_plain_env(name: str) -> None:
    (doc,) = [d for n, d in workloads() if n == name]
    for container in pod_spec(doc)["containers"]:
        argv = [*container.get("command", []), *container.get("args", [])]
        for arg in argv:
            assert not URL_WITH_PASSWORD.search(arg), f"{name}: credential in argv: {arg!r}"
            assert not re.match(r"--(db|amqp)-url(=|$)", arg), f"{name}: {arg} puts a URL on the command line"
            assert "password" not in arg.lower()
        for var in container.get("env", []):
            assert var["name"] not in ("DRAINER_DB_URL", "DRAINER_AMQP_URL"), f"{name}: {var['name']} in plain env"
            assert "valueFrom" not in var, f"{name}: {var['name']}: mount secrets as files, not env"
            assert not URL_WITH_PASSWORD.search(var.get("value", "")), f"{name}: credential in {var['name']}"


@pytest.mark.parametrize(
    ("name", "secret", "keys"),
    [
        ("cronjob.yaml", "vitrage-drainer", {"DRAINER_DB_URL_FILE": "db-url", "DRAINER_AMQP_URL_FILE": "amqp-url"}),
        ("job-maintenance.yaml", "vitrage-drainer", {"DRAINER_DB_URL_FILE": "db-url"}),
        ("job-migrate.yaml", "vitrage-drainer-owner", {"DRAINER_DB_URL_FILE": "db-url"}),
    ],
)
def test_secrets_mounted_as_files(name: str, secret: str, keys: dict[str, str]) -> None:
    (doc,) = [d for n, d in workloads() if n == name]
    pod = pod_spec(doc)
    (container,) = pod["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    example = {s["metadata"]["name"]: s for s in load(K8S / "secret.example.yaml")}
    for var, key in keys.items():
        assert env[var] == f"{SECRET_DIR}/{key}"
        mount = mounts[SECRET_DIR]
        assert mount.get("readOnly") is True and "subPath" not in mount
        assert volumes[mount["name"]]["secret"]["secretName"] == secret
        assert key in example[secret]["stringData"], f"secret.example.yaml: {secret} lacks key {key}"
    # Only the migrate Job (and later prune) may see the schema owner's credentials.
    secrets_used = {v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
    assert secrets_used == {secret}


def test_config_file_comes_from_the_configmap(tmp_path: Path) -> None:
    cron = one("cronjob.yaml", "CronJob")
    pod = pod_spec(cron)
    (container,) = pod["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    conf = Path(env["DRAINER_CONFIG_FILE"])
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == str(conf.parent))
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    configmap = one("configmap.example.yaml", "ConfigMap")
    assert volume["configMap"]["name"] == configmap["metadata"]["name"]
    # A missing file is exit 2, so the volume must not be optional.
    assert volume["configMap"].get("optional") is not True
    text = configmap["data"][conf.name]
    assert not URL_WITH_PASSWORD.search(text), "passwords belong in the Secret, not the ConfigMap"
    (tmp_path / conf.name).write_text(text, encoding="utf-8")
    assert read_config_files([str(tmp_path / conf.name)]) == {"topic": defaults.TOPIC}


def test_secret_example_holds_placeholders_only() -> None:
    for secret in load(K8S / "secret.example.yaml"):
        assert secret["metadata"]["annotations"]["vitrage-drainer/example"]
        for key, value in secret["stringData"].items():
            for found in URL_WITH_PASSWORD.finditer(value):
                assert found.group(0).endswith(":CHANGE-ME@"), f"{key}: not a placeholder password"
            if key == "amqp-url":
                assert split_amqp_urls(value)


def crontab_job_lines() -> list[str]:
    lines = (CRON / "crontab").read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line.strip() and not line.startswith("#") and not re.match(r"^\w+=", line)]


def test_crontab_line() -> None:
    text = (CRON / "crontab").read_text(encoding="utf-8")
    assert text.endswith("\n"), "cron ignores a last line without a newline"
    (line,) = crontab_job_lines()
    fields = line.split(None, 6)
    assert fields[:5] == ["*"] * 5
    assert fields[5] == "vitrage", "/etc/cron.d format: user field after the schedule"
    command = fields[6]
    assert command.startswith("flock -n ")
    assert "vitrage-drainer drain --until-empty" in command
    assert "logger -t vitrage-drainer" in command
    assert "%" not in command, "cron turns % into a newline"
    assert not URL_WITH_PASSWORD.search(text)


def env_example() -> dict[str, str]:
    pairs = {}
    for line in (CRON / "vitrage-drainer.env.example").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            pairs[name] = value
    return pairs


def test_crontab_timeout_outlasts_the_drainer() -> None:
    (line,) = crontab_job_lines()
    words = shlex.split(line.split(None, 6)[6])
    at = words.index("timeout")
    assert words[at + 1] == "-k", "timeout -k GRACE LIMIT: SIGTERM at LIMIT, SIGKILL GRACE later"
    limit = float(words[at + 3])
    env = env_example()
    worst = worst_case_seconds(
        float(env.get("DRAINER_MAX_SECONDS", defaults.MAX_SECONDS)),
        float(env.get("DRAINER_RETRY_SECONDS", defaults.RETRY_SECONDS)),
        float(env.get("DRAINER_SOCKET_TIMEOUT", defaults.SOCKET_TIMEOUT)),
    )
    assert limit > worst, f"timeout {limit:g} s <= worst case {worst:g} s"


def test_env_example_sources_in_sh_without_secrets() -> None:
    env = env_example()
    assert env["DRAINER_CONFIG_FILE"] == "/etc/vitrage/vitrage.conf"
    assert env["DRAINER_LOG_FORMAT"] == "json"
    assert not {"DRAINER_DB_URL", "DRAINER_AMQP_URL"} & set(env), "URLs go in files, not in the env file"
    for value in env.values():
        assert not URL_WITH_PASSWORD.search(value)
    path = CRON / "vitrage-drainer.env.example"
    shown = subprocess.run(
        ["sh", "-c", 'set -a; . "$1"; set +a; env', "sh", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": "/usr/bin:/bin"},
        check=True,
    ).stdout.splitlines()
    for name, value in env.items():
        assert f"{name}={value}" in shown


def containerfile() -> list[str]:
    """Instructions, comments dropped, continuation lines joined."""
    text = (CRON / "Containerfile").read_text(encoding="utf-8")
    joined = re.sub(r"\\\n", " ", "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("#")))
    return [ln.strip() for ln in joined.splitlines() if ln.strip()]


def test_containerfile_multi_stage_non_root() -> None:
    lines = containerfile()
    froms = [i for i, ln in enumerate(lines) if ln.upper().startswith("FROM ")]
    assert len(froms) >= 2 and all("python:3.11-slim" in lines[i] for i in froms)
    assert lines[froms[0]].lower().endswith(" as builder")
    final = lines[froms[-1] :]
    users = [ln.split(None, 1)[1] for ln in final if ln.upper().startswith("USER ")]
    assert users, "the final stage sets no USER: it would run as root"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) == 10001, "numeric non-root uid, so runAsNonRoot can verify it"
    assert any("pip wheel" in ln for ln in lines[: froms[-1]])
    installs = [ln for ln in final if "pip install" in ln]
    assert installs and not any(re.search(r"\s(-e|--editable)\s", ln) for ln in installs)
    assert 'ENTRYPOINT ["vitrage-drainer"]' in final
    assert 'CMD ["drain"]' in final
    for ln in lines:
        if ln.upper().startswith(("ENV ", "ARG ")):
            assert not re.search(r"PASSWORD|SECRET|DRAINER_(DB|AMQP)_URL\b", ln, re.IGNORECASE), ln
        assert not URL_WITH_PASSWORD.search(ln), ln


def grants_sql(**passwords: str) -> str:
    """The file as an administrator applies it: placeholders replaced (what sed does)."""
    text = GRANTS.read_text(encoding="utf-8")
    for name, value in passwords.items():
        text = text.replace(f"@@{name}@@", value)
    return text


def privileges(sql: str, user: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    pattern = rf"^GRANT (.+?) ON (\S+) TO '{user}'@'%';$"
    for privs, target in re.findall(pattern, sql, re.MULTILINE):
        found.setdefault(target.replace("`", ""), set()).update(p.strip() for p in privs.split(","))
    return found


def test_grants_sql_is_ignored_by_migrate_and_sed_ready() -> None:
    from drainer import schema

    assert not re.match(r"^\d", GRANTS.name)
    assert GRANTS.name not in [m.name for m in schema.migrations("mysql")]
    text = GRANTS.read_text(encoding="utf-8")
    assert set(re.findall(r"@@(\w+)@@", text)) == {"DRAIN_PASSWORD", "READER_PASSWORD", "OWNER_PASSWORD"}
    for password in re.findall(r"IDENTIFIED BY '([^']*)'", text):
        assert re.fullmatch(r"@@\w+_PASSWORD@@", password), "only placeholders, never a password"
    applied = grants_sql(DRAIN_PASSWORD="d", READER_PASSWORD="r", OWNER_PASSWORD="o")
    assert "@@" not in applied
    # PART 1 must work before `migrate` created the tables: no table-level grant in it.
    part1 = applied.split("\n-- PART 2", 1)[0]
    assert "-- PART 2" in applied and not re.search(r"ON `vitrage`\.`\w+`", part1)


def test_grants_least_privilege() -> None:
    sql = grants_sql()
    assert privileges(sql, "vitrage_drainer") == {
        "vitrage.drainer_events": {"SELECT", "INSERT"},
        "vitrage.drainer_rejected_messages": {"SELECT", "INSERT"},
        "vitrage.drainer_schema_migrations": {"SELECT"},
        "vitrage.drainer_leases": {"SELECT", "INSERT", "UPDATE"},
        "vitrage.drainer_runs": {"SELECT", "INSERT", "UPDATE"},
        "vitrage.drainer_history_outcomes": {"SELECT", "INSERT", "UPDATE"},
        "vitrage.alarms": {"SELECT", "INSERT", "UPDATE"},
        "vitrage.edges": {"SELECT", "INSERT", "UPDATE"},
        "vitrage.changes": {"SELECT", "INSERT"},
    }
    reader = privileges(sql, "vitrage_drainer_ro")
    assert set(reader) == {
        "vitrage.drainer_events",
        "vitrage.drainer_rejected_messages",
        "vitrage.drainer_schema_migrations",
        "vitrage.drainer_leases",
        "vitrage.drainer_runs",
        "vitrage.drainer_history_outcomes",
        "vitrage.alarms",
        "vitrage.edges",
        "vitrage.changes",
    }
    assert all(p == {"SELECT"} for p in reader.values())
    assert privileges(sql, "vitrage_drainer_owner") == {"vitrage.*": {"ALL PRIVILEGES"}}
