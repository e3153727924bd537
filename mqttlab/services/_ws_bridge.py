"""MQTT over WebSocket, served by the services process and bridged to the broker's TCP listener.

Debian's mosquitto 2.0.11 binds its WebSocket listeners to every interface whatever address it
is given (libwebsockets ignores it), which would expose the lab beyond loopback. Serving the
WebSocket here keeps it on the lab's own bind address; authentication is the broker's, unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket

from starlette.websockets import WebSocket, WebSocketDisconnect

log = logging.getLogger("mqttlab.services.ws")
_SUBPROTOCOLS = ("mqtt", "mqttv3.1")


async def bridge(websocket: WebSocket, broker_host: str, broker_port: int) -> None:
    """Pump MQTT bytes between one WebSocket client and a fresh TCP connection to the broker."""
    offered = [p.strip() for p in websocket.headers.get("sec-websocket-protocol", "").split(",") if p.strip()]
    chosen = next((p for p in offered if p in _SUBPROTOCOLS), None)
    try:
        reader, writer = await asyncio.open_connection(broker_host, broker_port)
    except OSError as exc:
        log.warning("websocket client refused: broker unreachable (%s)", exc)
        await websocket.close(code=1011)
        return
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    await websocket.accept(subprotocol=chosen)

    async def client_to_broker() -> None:
        try:
            while True:
                data = await websocket.receive_bytes()
                writer.write(data)
                await writer.drain()
        except (WebSocketDisconnect, KeyError, RuntimeError):
            pass  # KeyError/RuntimeError: a text frame or a close while reading; MQTT needs binary frames

    async def broker_to_client() -> None:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            await websocket.send_bytes(data)

    tasks = [asyncio.create_task(client_to_broker()), asyncio.create_task(broker_to_client())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
        with contextlib.suppress(Exception):
            await websocket.close()
