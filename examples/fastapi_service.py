"""A FastAPI service that receives a SPEAD stream in the background and shows it live.

The same service as ``web_service.py`` (the same page and endpoints), written
for FastAPI: the receive stream is made in the application's *lifespan*, on
the server's event loop, and stopped when the application shuts down.

* ``/``                  the live page (spectrum, waterfall, scalar history, rate, losses);
* ``/api/events``        what the page is updated by (server-sent events);
* ``/api/stats``         statistics as JSON;
* ``/api/items``         the latest value of every item as JSON (big arrays summarised);
* ``/api/items/{name}``  one item's full latest value as JSON (``?format=npy``: a .npy file).

Run it (needs ``pip install fastapi uvicorn``)::

    python examples/fastapi_service.py --demo

then open http://127.0.0.1:8080/.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from live_source import demo_sender, make_stream, parse_args, receive

from spead2.tools.live import LiveView, static_file


def make_app(spead_port: int, bind: str = "127.0.0.1", demo: bool = False) -> FastAPI:
    """The application; the stream starts and stops with it."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stream = make_stream(spead_port, bind)  # created here: on the server's loop
        live = app.state.live = LiveView([stream], [spead_port], title=f"UDP {bind}:{spead_port}")
        tasks = [asyncio.create_task(receive(stream, live)), asyncio.create_task(live.run())]
        if demo:
            tasks.append(asyncio.create_task(demo_sender(spead_port, bind)))
        yield
        stream.stop()  # ends receive()
        live.close()
        for task in tasks[1:]:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app = FastAPI(lifespan=lifespan, title="spead2 live", docs_url=None, redoc_url=None)

    def live_view(request: Request) -> LiveView:
        return request.app.state.live

    @app.get("/", response_class=HTMLResponse)
    async def page(request: Request) -> HTMLResponse:
        return HTMLResponse(live_view(request).page())

    @app.get("/static/{name}")
    async def static(name: str) -> Response:
        found = static_file(name)
        if found is None:
            raise HTTPException(404)
        body, content_type = found
        return Response(body, media_type=content_type)

    @app.get("/api/events")
    async def events(request: Request) -> StreamingResponse:
        async def encoded() -> AsyncIterator[bytes]:
            async with contextlib.aclosing(live_view(request).events()) as stream:
                async for event in stream:
                    yield event.encode()

        return StreamingResponse(
            encoded(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
        )

    @app.get("/api/stats")
    async def api_stats(request: Request) -> JSONResponse:
        return JSONResponse(live_view(request).stats())

    @app.get("/api/items")
    async def api_items(request: Request) -> JSONResponse:
        return JSONResponse(live_view(request).items())

    @app.get("/api/items/{name}")
    async def api_item(request: Request, name: str, format: str = "json") -> Response:
        live = live_view(request)
        if format == "npy":
            data = live.item_npy(name)
            if data is None:
                raise HTTPException(404, f"no array item named {name!r}")
            return Response(data, media_type="application/octet-stream", headers={
                "Content-Disposition": f'attachment; filename="{name}.npy"'})
        value = live.item(name)
        if value is None:
            raise HTTPException(404, f"no item named {name!r}")
        return JSONResponse(value)

    return app


class Server(uvicorn.Server):
    """uvicorn, ending the live page's event streams as soon as it starts to shut down.

    uvicorn waits for open responses to finish before it runs the lifespan's
    shutdown, and an event stream never finishes by itself.
    """

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        app: Any = self.config.app
        live = getattr(app.state, "live", None)
        if live is not None:
            live.close()
        await super().shutdown(sockets)


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    app = make_app(args.spead_port, args.bind, args.demo)
    # No access log: the page's event stream and API calls would flood it.
    config = uvicorn.Config(app, host=args.http_host, port=args.http_port, access_log=False)
    Server(config).run()


if __name__ == "__main__":
    main()
