"""A web service that receives a SPEAD stream in the background and shows it live (aiohttp).

The receive stream is a ``spead2.recv.asyncio.Stream`` on the web server's own
event loop: no threads, and request handlers read the live state directly.
The page, its plotting script and the state behind it come with spead2
(``spead2.tools.live``), so the page works without internet access.

* ``/``                  the live page: array items drawn as a spectrum and a
                         waterfall, scalars with their history, data rate and losses;
* ``/api/events``        what the page is updated by (server-sent events);
* ``/api/stats``         statistics as JSON;
* ``/api/items``         the latest value of every item as JSON (big arrays summarised);
* ``/api/items/{name}``  one item's full latest value as JSON (``?format=npy``: a .npy file).

A stop heap ends one stream, and the service waits for the next on the same port.

Run it and point a sender at it::

    python examples/web_service.py --spead-port 8888 --http-port 8080
    spead2_send --rate 0.001 --heap-size 4096 --items 2 127.0.0.1:8888

or let it feed itself with changing demo values::

    python examples/web_service.py --demo

then open http://127.0.0.1:8080/ (needs aiohttp: ``pip install aiohttp``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web
from live_source import demo_sender, make_stream, parse_args, receive

from spead2.tools.live import LiveView, static_file

LIVE = web.AppKey("live", LiveView)


async def page(request: web.Request) -> web.Response:
    return web.Response(text=request.app[LIVE].page(), content_type="text/html")


async def static(request: web.Request) -> web.Response:
    found = static_file(request.match_info["name"])
    if found is None:
        raise web.HTTPNotFound()
    body, content_type = found
    return web.Response(body=body, content_type=content_type)


async def events(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    await response.prepare(request)
    # aclosing: a browser that goes away ends its subscription at once.
    async with contextlib.aclosing(request.app[LIVE].events()) as stream:
        with contextlib.suppress(ConnectionResetError):  # the browser went away
            async for event in stream:
                await response.write(event.encode())
    return response


async def api_stats(request: web.Request) -> web.Response:
    return web.json_response(request.app[LIVE].stats())


async def api_items(request: web.Request) -> web.Response:
    return web.json_response(request.app[LIVE].items())


async def api_item(request: web.Request) -> web.Response:
    live, name = request.app[LIVE], request.match_info["name"]
    if request.query.get("format") == "npy":
        data = live.item_npy(name)
        if data is None:
            raise web.HTTPNotFound(text=f"no array item named {name!r}")
        return web.Response(body=data, content_type="application/octet-stream", headers={
            "Content-Disposition": f'attachment; filename="{name}.npy"'})
    value = live.item(name)
    if value is None:
        raise web.HTTPNotFound(text=f"no item named {name!r}")
    return web.json_response(value)


def make_app(spead_port: int, bind: str = "127.0.0.1", demo: bool = False) -> web.Application:
    """The web application; the stream starts and stops with it."""
    app = web.Application()

    async def receive_in_background(app: web.Application) -> AsyncIterator[None]:
        stream = make_stream(spead_port, bind)  # created here: on the server's loop
        live = app[LIVE] = LiveView([stream], [spead_port], title=f"UDP {bind}:{spead_port}")
        tasks = [asyncio.create_task(receive(stream, live)), asyncio.create_task(live.run())]
        if demo:
            tasks.append(asyncio.create_task(demo_sender(spead_port, bind)))
        yield
        stream.stop()  # ends receive()
        for task in tasks[1:]:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def end_event_streams(app: web.Application) -> None:
        # Open event streams would otherwise hold up the shutdown.
        app[LIVE].close()

    app.cleanup_ctx.append(receive_in_background)
    app.on_shutdown.append(end_event_streams)
    app.router.add_get("/", page)
    app.router.add_get("/static/{name}", static)
    app.router.add_get("/api/events", events)
    app.router.add_get("/api/stats", api_stats)
    app.router.add_get("/api/items", api_items)
    app.router.add_get("/api/items/{name}", api_item)
    return app


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    app = make_app(args.spead_port, args.bind, args.demo)
    logging.info("live view on http://%s:%d/", args.http_host, args.http_port)
    # No access log: the page's event stream and API calls would flood it.
    web.run_app(app, host=args.http_host, port=args.http_port, access_log=None, print=None)


if __name__ == "__main__":
    main()
