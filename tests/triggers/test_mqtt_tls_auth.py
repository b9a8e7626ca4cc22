"""Broker settings that matter in real homes: a user and password, TLS with the broker's own CA,
a client id; a wrong password is one warning (not one per retry) and never a crash."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import logging
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import aiomqtt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from sidecar.camera import Camera, CameraSpec
from sidecar.camera.events import CameraEvent, MotionChanged
from sidecar.triggers.mqtt import BrokerSettings, MqttBridge
from sidecar.triggers.mqtt_presets import Binding
from tests.support.mosquitto import Mosquitto

pytestmark = pytest.mark.usefixtures("executor_joined")
USER, PASSWORD = "hksv", "correct horse battery"


def _cert(subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Name | None,
          issuer_key: ec.EllipticCurvePrivateKey, ca: bool) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer or name).public_key(key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if not ca:
        loopback = x509.IPAddress(ipaddress.ip_address("127.0.0.1"))
        builder = builder.add_extension(x509.SubjectAlternativeName([loopback]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def make_tls(directory: Path) -> Path:
    """A private CA and a server certificate for 127.0.0.1; returns the CA file."""
    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = _cert("hksv test CA", ca_key, None, ca_key, ca=True)
    server = _cert("127.0.0.1", server_key, ca.subject, ca_key, ca=False)
    (directory / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (directory / "server.pem").write_bytes(server.public_bytes(serialization.Encoding.PEM))
    (directory / "server.key").write_bytes(server_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()))
    return directory / "ca.pem"


@pytest.fixture
async def secure_broker(tmp_path: Path) -> AsyncIterator[tuple[Mosquitto, Path]]:
    ca = make_tls(tmp_path)
    pw = await asyncio.create_subprocess_exec("mosquitto_passwd", "-b", "-c", str(tmp_path / "passwords"), USER,
                                              PASSWORD)
    assert await pw.wait() == 0
    broker = Mosquitto(tmp_path, extra=f"allow_anonymous false\npassword_file {tmp_path / 'passwords'}\n"
                                       f"cafile {ca}\ncertfile {tmp_path / 'server.pem'}\n"
                                       f"keyfile {tmp_path / 'server.key'}\n")
    await broker.start()
    try:
        yield broker, ca
    finally:
        await broker.stop()


@pytest.fixture
async def camera(tmp_path: Path) -> AsyncIterator[Camera]:
    cam = Camera(CameraSpec(name="Front Door", source="demo", profile="libx264"), tmp_path / "state",
                 host="127.0.0.1", port=0, advertiser=None)
    await cam.start()
    try:
        yield cam
    finally:
        await cam.stop()


async def test_tls_with_the_brokers_ca_and_a_password(secure_broker: tuple[Mosquitto, Path], camera: Camera) -> None:
    broker, ca = secure_broker
    seen: list[bool] = []
    raised = asyncio.Event()

    def follow(ev: CameraEvent) -> None:
        if isinstance(ev, MotionChanged):
            seen.append(ev.active)
            raised.set()

    camera.events.subscribe(follow)
    settings = BrokerSettings(host="127.0.0.1", port=broker.port, username=USER, password=PASSWORD, tls=True,
                              tls_ca_file=str(ca), client_id="hksv-sidecar-tls", keepalive=10)
    bridge = MqttBridge(settings, [camera], [Binding(camera="Front Door", preset="frigate_motion",
                                                     remote="front_door")])
    await bridge.start()
    try:
        await asyncio.wait_for(bridge.connected.wait(), 20)
        context = ssl.create_default_context(cafile=str(ca))
        async with aiomqtt.Client("127.0.0.1", broker.port, username=USER, password=PASSWORD,
                                  tls_context=context) as nvr:
            await nvr.publish("frigate/front_door/motion", b"ON", qos=1)
            await asyncio.wait_for(raised.wait(), 15)
        assert seen == [True]
        assert PASSWORD not in repr(settings)
    finally:
        await bridge.stop()


async def test_wrong_password_is_one_warning_and_no_crash(secure_broker: tuple[Mosquitto, Path], camera: Camera,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    broker, ca = secure_broker
    caplog.set_level(logging.INFO, logger="sidecar.triggers.mqtt")
    settings = BrokerSettings(host="127.0.0.1", port=broker.port, username=USER, password="wrong", tls=True,
                              tls_ca_file=str(ca), backoff_initial_s=0.05, backoff_max_s=0.2)
    bridge = MqttBridge(settings, [camera], [Binding(camera="Front Door", preset="frigate_motion",
                                                     remote="front_door")])
    await bridge.start()
    try:
        async with asyncio.timeout(30):
            while bridge.failed_attempts < 3:
                bridge.changed.clear()
                await bridge.changed.wait()
    finally:
        await bridge.stop()
    messages = [r.getMessage() for r in caplog.records if r.name == "sidecar.triggers.mqtt"]
    assert len([m for m in messages if "unreachable" in m]) == 1, messages
    assert "Not authorized" in messages[0] or "not authori" in messages[0].lower(), messages
    assert not any("wrong" in m for m in messages)
    assert bridge.connections == 0
