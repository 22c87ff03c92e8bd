"""TLS to the broker exactly as vitrage.conf configures it ([oslo_messaging_rabbit] ssl, ssl_ca_file,
ssl_cert_file, ssl_key_file, ssl_version, or ?ssl=1), against a real TLS endpoint in front of the
real RabbitMQ, with a CA made for the test."""

from __future__ import annotations

import json
import ssl
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import AMQP_URL, Database, Rabbit, _require, oslo_v2, require_module, run_cli
from tests.tls_proxy import TLSProxy, tls_proxy

pytestmark = pytest.mark.integration
trustme = require_module("trustme")


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


def server_context(ca: trustme.CA, names: tuple[str, ...] = ("localhost", "127.0.0.1"), client_ca=None):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names).configure_cert(context)
    if client_ca is not None:
        client_ca.configure_trust(context)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


@pytest.fixture
def queue_and_db(rabbit: Rabbit, mysql_db: Database) -> Iterator[tuple[Rabbit, Database]]:
    _require(AMQP_URL, 5672, "RabbitMQ")
    assert run_cli("migrate", "--db-url", mysql_db.url).code == 0
    rabbit.publish([oslo_v2({"seq": i}) for i in range(3)])
    yield rabbit, mysql_db


def vitrage_conf(tmp_path: Path, proxy: TLSProxy, rabbit_section: str, query: str = "") -> str:
    path = tmp_path / f"vitrage-{uuid.uuid4().hex[:6]}.conf"
    path.write_text(
        f"[DEFAULT]\ntransport_url = rabbit://guest:guest@localhost:{proxy.port}/{query}\n"
        f"[oslo_messaging_rabbit]\n{rabbit_section}\n"
    )
    return str(path)


def drain_with(conf: str, rabbit: Rabbit, db: Database):
    return run_cli("drain", "--config-file", conf, "--db-url", db.url, "--queue", rabbit.queue, "--retry-seconds", "3")


def pem(tmp_path: Path, name: str, blob) -> str:
    path = tmp_path / name
    blob.write_to_path(str(path))
    return str(path)


def test_ssl_true_with_a_ca_file_drains_over_tls_verified_against_that_ca(ca, queue_and_db, tmp_path: Path) -> None:
    rabbit, db = queue_and_db
    ca_file = pem(tmp_path, "ca.pem", ca.cert_pem)
    with tls_proxy(server_context(ca)) as proxy:
        result = drain_with(vitrage_conf(tmp_path, proxy, f"ssl = true\nssl_ca_file = {ca_file}"), rabbit, db)
    assert result.code == 0 and result.summary["stored"] == 3, result.stderr
    assert proxy.handshakes >= 1  # the proxy speaks nothing but TLS: the run went through it


def test_ssl_in_the_transport_url_query_turns_tls_on(ca, queue_and_db, tmp_path: Path) -> None:
    rabbit, db = queue_and_db
    ca_file = pem(tmp_path, "ca.pem", ca.cert_pem)
    with tls_proxy(server_context(ca)) as proxy:
        conf = vitrage_conf(tmp_path, proxy, "", query=f"?ssl=1&ssl_ca_file={ca_file}")
        result = drain_with(conf, rabbit, db)
    assert result.code == 0 and result.summary["stored"] == 3, result.stderr


@pytest.mark.parametrize("case", ["another-ca", "wrong-host-name", "no-ca-file-system-store"])
def test_a_broker_certificate_the_configuration_does_not_trust_is_refused_with_77(
    case: str, ca, queue_and_db, tmp_path: Path
) -> None:
    rabbit, db = queue_and_db
    served = server_context(ca, names=("rabbit.example.org",)) if case == "wrong-host-name" else server_context(ca)
    trusted = trustme.CA() if case == "another-ca" else ca
    section = (
        "ssl = true"
        if case == "no-ca-file-system-store"
        else f"ssl = true\nssl_ca_file = {pem(tmp_path, 'ca.pem', trusted.cert_pem)}"
    )
    with tls_proxy(served) as proxy:
        result = drain_with(vitrage_conf(tmp_path, proxy, section), rabbit, db)
    assert result.code == 77, result.stderr
    assert result.summary["error"] == "broker_certificate_refused" and result.summary["fetched"] == 0
    assert "TLS certificate" in result.summary["detail"] and "\n" not in result.summary["detail"]
    errors = [r for r in result.records if r["level"] in ("ERROR", "CRITICAL")]
    assert [r["logger"] for r in errors] == ["drainer.cli"]  # one record: pika's tracebacks stay quiet
    assert rabbit.depth() == 3


def test_ssl_version_without_a_ca_file_verifies_nothing_as_oslo_messaging_does(
    ca, queue_and_db, tmp_path: Path
) -> None:
    rabbit, db = queue_and_db
    with tls_proxy(server_context(ca, names=("rabbit.example.org",))) as proxy:
        result = drain_with(vitrage_conf(tmp_path, proxy, "ssl = true\nssl_version = TLSv1_2"), rabbit, db)
    assert result.code == 0 and result.summary["stored"] == 3, result.stderr
    warned = [r for r in result.records if r.get("event") == "tls_unverified"]
    assert warned and "ssl_ca_file" in warned[0]["message"]


def test_a_client_certificate_is_sent_and_its_absence_is_refused_with_77(ca, queue_and_db, tmp_path: Path) -> None:
    rabbit, db = queue_and_db
    client_ca = trustme.CA()
    client = client_ca.issue_cert("vitrage-drainer")
    ca_file = pem(tmp_path, "ca.pem", ca.cert_pem)
    cert_file = pem(tmp_path, "client.pem", client.cert_chain_pems[0])
    key_file = pem(tmp_path, "client.key", client.private_key_pem)
    with tls_proxy(server_context(ca, client_ca=client_ca)) as proxy:
        without = drain_with(vitrage_conf(tmp_path, proxy, f"ssl = true\nssl_ca_file = {ca_file}"), rabbit, db)
        section = f"ssl = true\nssl_ca_file = {ca_file}\nssl_cert_file = {cert_file}\nssl_key_file = {key_file}"
        with_cert = drain_with(vitrage_conf(tmp_path, proxy, section), rabbit, db)
    assert without.code == 77, without.stderr
    assert "refused this client's TLS certificate" in without.summary["detail"]
    assert with_cert.code == 0 and with_cert.summary["stored"] == 3, with_cert.stderr


def test_tls_to_a_port_that_does_not_speak_it_is_a_handshake_failure_69(queue_and_db, tmp_path: Path) -> None:
    rabbit, db = queue_and_db
    conf = tmp_path / "vitrage.conf"
    conf.write_text(
        "[DEFAULT]\ntransport_url = rabbit://guest:guest@127.0.0.1:5672/\n[oslo_messaging_rabbit]\nssl = true\n"
    )
    result = drain_with(str(conf), rabbit, db)
    assert result.code == 69, result.stderr
    assert result.summary["error"] == "broker_unavailable" and "TLS handshake" in result.summary["detail"]
    assert rabbit.depth() == 3


def test_status_reads_the_queue_over_tls_too(ca, queue_and_db, tmp_path: Path) -> None:
    rabbit, db = queue_and_db
    ca_file = pem(tmp_path, "ca.pem", ca.cert_pem)
    with tls_proxy(server_context(ca)) as proxy:
        conf = vitrage_conf(tmp_path, proxy, f"ssl = true\nssl_ca_file = {ca_file}")
        result = run_cli("status", "--json", "--config-file", conf, "--db-url", db.url, "--queue", rabbit.queue)
    assert result.code == 0 and json.loads(result.stdout)["queue_depth"] == 3, result.stderr


def test_an_amqps_url_with_the_tls_flags_drains_over_tls(ca, queue_and_db, tmp_path: Path) -> None:
    rabbit, db = queue_and_db
    ca_file = pem(tmp_path, "ca.pem", ca.cert_pem)
    with tls_proxy(server_context(ca)) as proxy:
        url = f"amqps://guest:guest@localhost:{proxy.port}/%2F"
        args = ("--amqp-url", url, "--amqp-ssl-ca-file", ca_file, "--queue", rabbit.queue, "--db-url", db.url)
        result = run_cli("drain", *args)
    assert result.code == 0 and result.summary["stored"] == 3, result.stderr
    assert proxy.handshakes >= 1
