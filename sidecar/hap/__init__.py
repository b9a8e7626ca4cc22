"""Generic HomeKit Accessory Protocol server (knows nothing of cameras).

Build an :class:`Accessory` from :class:`Service` and :class:`Characteristic` objects (see
``catalog`` for Apple-defined ones), then serve it with :class:`AccessoryServer`::

    server = AccessoryServer(accessory, state_dir / "front.json", name="Front",
                             host="127.0.0.1", setup_code="031-45-154")
    await server.start()          # server.port, server.setup_code, server.setup_uri
    char.set_value(True)          # events go to subscribed controllers
    await server.stop()

Handlers: ``Characteristic.on_write(value, WriteContext)`` may raise :class:`HapError` and,
for write-response characteristics, return the response value; ``on_read(ReadContext)``
supplies read-time values. ``ctx.session`` is a :class:`SessionView`: ``controller_id``,
``is_admin``, ``shared_secret`` (the pair-verify X25519 secret, for HDS key derivation),
``session_id`` and ``add_close_callback(cb)`` (called once when that connection closes).

What the layer above may use of a running server, besides the constructor's hooks
(``resource_handler``, ``on_identify``, ``on_factory_reset``, ``on_pairing`` for a
:class:`PairingNotice` on every pairing added, removed or refused): ``port``, ``setup_code``,
``setup_uri``, ``paired``, ``state`` (the stored identity, its ``pairings`` and ``app`` data),
``session_count`` (verified sessions open now), ``verify_failures`` (refused pair-verify
attempts since start) and ``remove_all_pairings()``. ``server.core`` is the sans-IO core, for
tests; application code does not reach into it.
"""

from .advertiser import Advertiser, local_addresses, open_zeroconf
from .core import CoreConfig, ServerCore
from .model import (
    Accessory,
    Characteristic,
    Format,
    Perm,
    ReadContext,
    Service,
    SessionView,
    WriteContext,
    full_uuid,
    perms,
    short_uuid,
)
from .notices import PairingNotice
from .server import AccessoryServer, ResourceHandler
from .setup_payload import setup_hash, setup_uri
from .state import AccessoryState, StateError
from .status import HapError, HapStatus, TlvErrorCode

__all__ = [
    "Accessory",
    "AccessoryServer",
    "AccessoryState",
    "Advertiser",
    "Characteristic",
    "CoreConfig",
    "Format",
    "HapError",
    "HapStatus",
    "PairingNotice",
    "Perm",
    "ReadContext",
    "ResourceHandler",
    "ServerCore",
    "Service",
    "SessionView",
    "StateError",
    "TlvErrorCode",
    "WriteContext",
    "full_uuid",
    "local_addresses",
    "open_zeroconf",
    "perms",
    "setup_hash",
    "setup_uri",
    "short_uuid",
]
