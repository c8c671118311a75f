"""SPEC §4.7 "Delivery is safe for the sender": every internal address class is refused, the target
is resolved once and connected to by the checked address (the URL's Host header and TLS server name
kept), so DNS rebinding cannot reach the host; bad ports and schemes are refused at registration;
an attempt that raises is recorded and counted, never retried forever."""

from __future__ import annotations

import http.server
import shutil
import socket
import ssl
import subprocess
import threading

import pytest
from django.test import override_settings

from stateset.testing import error_of
from webhooks import services
from webhooks.models import Delivery, Endpoint, Event

REFUSED = [
    "127.0.0.1", "127.255.0.9", "10.1.2.3", "172.16.0.1", "192.168.1.1",  # loopback, private
    # link-local (cloud metadata), CGNAT, "this"
    "169.254.169.254", "100.64.0.1", "0.0.0.0", "0.1.2.3",
    # multicast, reserved, broadcast
    "224.0.0.1", "239.255.255.250", "240.0.0.1", "255.255.255.255",
    "192.0.2.1", "198.18.0.1",  # documentation, benchmarking
    "::1", "::", "fe80::1", "fe80::1%eth0", "fc00::1", "fd12:3456::1", "fec0::1",  # v6 classes
    "ff02::1", "ff0e::1",  # v6 multicast
    "::127.0.0.1", "::8.8.8.8",  # IPv4-compatible ::/96
    "::ffff:127.0.0.1", "::ffff:8.8.8.8", "::ffff:0:7f00:1",  # IPv4-mapped and -translated
    "64:ff9b::7f00:1", "64:ff9b::808:808", "64:ff9b:1::a00:1",  # NAT64, well-known and local-use
    "2002:7f00:1::1", "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # 6to4 and Teredo (IPv4 inside)
    "2001:db8::1", "100::1",  # documentation, discard-only
]
PUBLIC = ["8.8.8.8", "93.184.216.34", "2606:4700:4700::1111", "2a00:1450:4001:80b::200e"]


@pytest.mark.parametrize("address", REFUSED)
def test_every_internal_address_class_is_refused(address):
    assert services.address_refusal(address)


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address):
    assert services.address_refusal(address) == ""


@override_settings(WEBHOOKS_ALLOW_PRIVATE_TARGETS=False)
@pytest.mark.parametrize("url", [
    "http://[::127.0.0.1]/x", "http://[64:ff9b::7f00:1]/x", "http://[::ffff:10.0.0.1]/x",
    "http://127.1/x", "http://0x7f000001/x", "http://2130706433/x", "http://017700000001/x",
    "http://sub.localhost/x", "http://[fd00::1]:8443/x",
])
def test_registration_refuses_internal_literals_in_any_spelling(api, url):
    error = error_of(api.post("/api/v1/webhooks", {"url": url, "events": ["*"]}, format="json"),
                     422)
    assert "url" in error["details"]
    with pytest.raises(services.ValidationFailed):  # the service itself, as the admin calls it
        services.endpoint_create(url=url, events=["*"])
    assert not Endpoint.objects.exists()


@pytest.mark.parametrize("url",
                         ["https://hooks.example.com:70000/x", "https://hooks.example.com:0/x",
                                 "https://hooks.example.com:99999/x", "ftp://hooks.example.com/x",
                                 "gopher://hooks.example.com/x"])
def test_registration_refuses_bad_ports_and_schemes_even_with_private_targets_allowed(api, url):
    error = error_of(api.post("/api/v1/webhooks", {"url": url, "events": ["*"]}, format="json"),
                     422)
    assert "url" in error["details"]
    assert not Endpoint.objects.exists()
    with pytest.raises(services.ValidationFailed):
        services.endpoint_create(url=url, events=["*"])


class Receiver:
    """An HTTP(S) server on 127.0.0.1 recording each request's Host header (and TLS server name)."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.requests: list[dict[str, str]] = []
        self.server_names: list[str | None] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append(dict(self.headers.items()))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            tls.sni_callback = lambda sock, name, ctx: receiver.server_names.append(name)
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_port
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


def delivery_for(url: str) -> Delivery:
    # as stored, unchecked
    endpoint = Endpoint.objects.create(url=url, events=["*"], secret="s" * 32)
    return Delivery.objects.create(endpoint=endpoint,
                                   event=Event.objects.create(type="order.created"))


@pytest.fixture
def fake_dns(monkeypatch):
    """A resolver for *.test names: ``answers[name]`` is the list of answers, one per lookup (the
    last repeats). Connections go only to 127.0.0.1; any other address is recorded and refused, so
    no test traffic leaves the machine."""
    answers: dict[str, list[str]] = {}
    lookups: list[str] = []
    attempted: list[tuple[str, int]] = []
    real_getaddrinfo, real_connect = socket.getaddrinfo, socket.create_connection

    def getaddrinfo(host, port, *args, **kwargs):
        if isinstance(host, str) and host.endswith(".test"):
            lookups.append(host)
            queue = answers[host]
            address = queue.pop(0) if len(queue) > 1 else queue[0]
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            return [(family, socket.SOCK_STREAM, 6, "", (address, port))]
        return real_getaddrinfo(host, port, *args, **kwargs)

    def create_connection(address, *args, **kwargs):
        host, port = address
        resolved = getaddrinfo(host, port)[0][4][0]
        if resolved != "127.0.0.1":
            attempted.append((resolved, port))
            raise ConnectionRefusedError("test: only 127.0.0.1 is reachable")
        attempted.append((resolved, port))
        return real_connect((resolved, port), *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket, "create_connection", create_connection)
    return answers, lookups, attempted


@override_settings(WEBHOOKS_ALLOW_PRIVATE_TARGETS=False)
def test_dns_rebinding_cannot_reach_the_host(db, receiver, fake_dns):
    answers, lookups, attempted = fake_dns
    answers["hooks.rebind.test"] = ["93.184.216.34", "127.0.0.1"]  # public when checked, then local
    delivery = delivery_for(f"http://hooks.rebind.test:{receiver.port}/in")
    assert services.deliver(delivery_id=delivery.id) == Delivery.Status.PENDING
    assert lookups == ["hooks.rebind.test"]  # resolved once
    assert attempted == [("93.184.216.34", receiver.port)]  # connected to the checked address
    assert receiver.requests == []  # the host's own service saw nothing
    delivery.refresh_from_db()
    assert delivery.attempts == 1 and delivery.response_status is None
    assert "ConnectionRefusedError" in delivery.last_error


@override_settings(WEBHOOKS_ALLOW_PRIVATE_TARGETS=False)
def test_a_name_with_any_internal_answer_is_refused_before_connecting(db, fake_dns):
    answers, _, attempted = fake_dns
    answers["hooks.mixed.test"] = ["64:ff9b::a9fe:a9fe"]  # NAT64 of 169.254.169.254
    delivery = delivery_for("https://hooks.mixed.test/in")
    services.deliver(delivery_id=delivery.id)
    delivery.refresh_from_db()
    assert attempted == [] and delivery.attempts == 1
    assert "internal" in delivery.last_error


def test_the_connection_goes_to_the_resolved_address_with_the_urls_host_header(db, receiver,
                                                                               fake_dns):
    answers, lookups, attempted = fake_dns
    answers["hooks.pinned.test"] = ["127.0.0.1"]
    delivery = delivery_for(f"http://hooks.pinned.test:{receiver.port}/in")
    assert services.deliver(delivery_id=delivery.id) == Delivery.Status.SUCCEEDED
    assert lookups == ["hooks.pinned.test"]
    assert attempted == [("127.0.0.1", receiver.port)]
    assert receiver.requests[0]["Host"] == f"hooks.pinned.test:{receiver.port}"


@pytest.mark.skipif(shutil.which("openssl") is None,
                    reason="needs the openssl command for a test cert")
def test_tls_keeps_the_urls_server_name_and_checks_the_certificate_against_it(db, fake_dns,
                                                                              tmp_path,
                                                                             monkeypatch):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=hooks.tls.test", "-addext", "subjectAltName=DNS:hooks.tls.test",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert, key)
    server = Receiver(tls=server_tls)
    try:
        monkeypatch.setattr(services, "tls_context",
                            lambda: ssl.create_default_context(cafile=str(cert)))
        answers, _, attempted = fake_dns
        answers["hooks.tls.test"] = ["127.0.0.1"]
        answers["other.tls.test"] = ["127.0.0.1"]
        ok = delivery_for(f"https://hooks.tls.test:{server.port}/in")
        assert services.deliver(delivery_id=ok.id) == Delivery.Status.SUCCEEDED
        assert server.server_names == ["hooks.tls.test"]
        assert server.requests[0]["Host"] == f"hooks.tls.test:{server.port}"
        # The same server under another name: its certificate does not match, nothing is sent.
        wrong = delivery_for(f"https://other.tls.test:{server.port}/in")
        assert services.deliver(delivery_id=wrong.id) == Delivery.Status.PENDING
        wrong.refresh_from_db()
        assert "CERTIFICATE_VERIFY_FAILED" in wrong.last_error or "SSL" in wrong.last_error
        assert len(server.requests) == 1
    finally:
        server.close()


@override_settings(WEBHOOKS_MAX_ATTEMPTS=2, WEBHOOKS_BACKOFF_SECONDS=1)
def test_a_stored_bad_port_fails_its_attempts_and_stops_at_the_limit(db):
    delivery = delivery_for("https://hooks.example.com:70000/in")  # stored before the port check
    assert services.deliver(delivery_id=delivery.id) == Delivery.Status.PENDING
    delivery.refresh_from_db()
    assert delivery.attempts == 1 and "port" in delivery.last_error
    Delivery.objects.filter(id=delivery.id).update(next_attempt_at=delivery.created_at)
    assert services.deliver(delivery_id=delivery.id) == Delivery.Status.FAILED
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.FAILED and delivery.attempts == 2
    assert services.due_deliveries() == []  # nothing left for the pump


@override_settings(WEBHOOKS_MAX_ATTEMPTS=2, WEBHOOKS_BACKOFF_SECONDS=1)
def test_an_attempt_that_raises_is_recorded_and_counted(db, receiver, monkeypatch):
    def explode(*args, **kwargs):
        raise RuntimeError("a bug in the sender")

    monkeypatch.setattr(services, "_post", explode)
    delivery = delivery_for(f"http://127.0.0.1:{receiver.port}/in")
    assert services.deliver(delivery_id=delivery.id) == Delivery.Status.PENDING
    delivery.refresh_from_db()
    assert delivery.attempts == 1 and delivery.last_error == "Delivery failed: RuntimeError"
    assert delivery.next_attempt_at > delivery.last_attempt_at  # backed off, not stuck on its lease
    Delivery.objects.filter(id=delivery.id).update(next_attempt_at=delivery.created_at)
    assert services.deliver(delivery_id=delivery.id) == Delivery.Status.FAILED


@override_settings(WEBHOOKS_MAX_ATTEMPTS=2)
def test_a_delivery_whose_last_attempt_never_finished_is_failed_not_retried_forever(db, receiver):
    delivery = delivery_for(f"http://127.0.0.1:{receiver.port}/in")
    # A worker claimed its last attempt and died before recording it: pending, lease over, no
    # attempts left.
    Delivery.objects.filter(id=delivery.id).update(attempts=2, next_attempt_at=delivery.created_at)
    assert services.deliver(delivery_id=delivery.id) == Delivery.Status.FAILED
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.FAILED and delivery.attempts == 2
    assert receiver.requests == [] and services.due_deliveries() == []
