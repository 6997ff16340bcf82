"""BenchCart written with the Restate Python SDK, served by hypercorn (run in its own virtualenv under var/).

Usage: python service.py PORT. Restate multiplexes invocations over one HTTP/2 connection, so
keep_alive_max_requests is raised far above hypercorn's default of 1000, which would drop that
connection mid-run (the hot key then stalls for ~30 s).
"""

import asyncio
import sys
from typing import Any

import restate
from hypercorn.asyncio import serve
from hypercorn.config import Config

cart = restate.VirtualObject("BenchCart")


@cart.handler()
async def add_item(ctx: restate.ObjectContext, item: Any) -> int:
    items = await ctx.get("items") or []
    items.append(item)
    ctx.set("items", items)
    return len(items)


@cart.handler(kind="shared")
async def get_items(ctx: restate.ObjectSharedContext) -> list:
    return await ctx.get("items") or []


app = restate.app(services=[cart])


def main() -> None:
    config = Config()
    config.bind = [f"127.0.0.1:{int(sys.argv[1])}"]
    config.keep_alive_max_requests = 1_000_000_000
    config.keep_alive_timeout = 3600
    config.accesslog = None
    config.errorlog = "-"
    config.loglevel = "WARNING"
    asyncio.run(serve(app, config))


if __name__ == "__main__":
    main()
