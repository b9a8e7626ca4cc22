"""mDNS (``_hap._tcp``) advertisement with python-zeroconf.

One :class:`Advertiser` per accessory; they can share one AsyncZeroconf (one responder per
process). Interfaces are explicit: a user's default is every LAN interface, while tests and
these machines pass ``["127.0.0.1"]`` so nothing multicasts anywhere else.

zeroconf and ifaddr load on first use: a server started without an advertiser (mDNS off, a
parent that advertises itself, the tests) never loads them.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

__all__ = ["HAP_TYPE", "Advertiser", "local_addresses", "open_zeroconf"]

HAP_TYPE = "_hap._tcp.local."


def open_zeroconf(interfaces: list[str] | None) -> AsyncZeroconf:
    """A responder on ``interfaces`` (IP addresses), or on every interface when None."""
    from zeroconf import InterfaceChoice, IPVersion
    from zeroconf.asyncio import AsyncZeroconf

    if interfaces is None:
        return AsyncZeroconf(interfaces=InterfaceChoice.Default, ip_version=IPVersion.V4Only)
    return AsyncZeroconf(interfaces=list(interfaces), ip_version=IPVersion.V4Only)


def local_addresses(interfaces: list[str] | None) -> list[str]:
    """The addresses to put in our A records: the chosen ones, or every non-loopback IPv4."""
    if interfaces is not None:
        return list(interfaces)
    import ifaddr

    found: list[str] = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            if isinstance(ip.ip, str):
                addr = ipaddress.ip_address(ip.ip)
                if not addr.is_loopback and not addr.is_link_local:
                    found.append(ip.ip)
    return found or ["127.0.0.1"]


def _instance_name(name: str, device_id: str) -> str:
    clean = re.sub(r"[^\w \-]", "", name).strip() or "Camera"
    return f"{clean[:50]} {device_id.replace(':', '')[-4:]}"


class Advertiser:
    def __init__(self, zeroconf: AsyncZeroconf, addresses: list[str]) -> None:
        self._zc = zeroconf
        self._addresses = addresses
        self._info: AsyncServiceInfo | None = None

    def service_info(self, name: str, port: int, txt: dict[str, str]) -> AsyncServiceInfo:
        from zeroconf.asyncio import AsyncServiceInfo

        instance = _instance_name(name, txt["id"])
        host = re.sub(r"[^A-Za-z0-9\-]", "-", instance) + ".local."
        return AsyncServiceInfo(
            HAP_TYPE,
            f"{instance}.{HAP_TYPE}",
            addresses=[socket.inet_aton(a) for a in self._addresses],
            port=port,
            properties=txt,
            server=host,
        )

    async def register(self, name: str, port: int, txt: dict[str, str]) -> None:
        self._info = self.service_info(name, port, txt)
        await self._zc.async_register_service(self._info, allow_name_change=True)

    async def update(self, txt: dict[str, str]) -> None:
        if self._info is None:
            return
        from zeroconf.asyncio import AsyncServiceInfo

        info = self._info
        self._info = AsyncServiceInfo(
            info.type, info.name, addresses=info.addresses, port=info.port, properties=txt,
            server=info.server,
        )
        await self._zc.async_update_service(self._info)

    async def unregister(self) -> None:
        if self._info is not None:
            info, self._info = self._info, None
            await self._zc.async_unregister_service(info)
