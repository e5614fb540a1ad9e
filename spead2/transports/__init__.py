"""Asyncio adapters that move bytes between the OS (or memory) and the sans-IO core.

Public here: :class:`DatagramReceiver` and :class:`TcpReceiver`, asyncio
protocols that feed a receive stream from transports the application
creates (``loop.create_datagram_endpoint``, ``create_server``,
``create_connection``).
"""

from .protocols import DatagramReceiver, TcpReceiver

__all__ = ["DatagramReceiver", "TcpReceiver"]
