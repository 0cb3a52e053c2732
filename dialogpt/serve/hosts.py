"""Is an address this machine only? (Kept apart, in the standard library only: the human-eval CLI asks
it without loading the web stack or the model code.)"""

from __future__ import annotations

import ipaddress
import socket


def is_loopback(host: str) -> bool:
    """Whether ``host`` resolves to a loopback address (only this machine can connect)."""
    try:
        return ipaddress.ip_address(socket.gethostbyname(host)).is_loopback
    except (OSError, ValueError):
        return False
