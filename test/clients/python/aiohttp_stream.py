import asyncio
import os

import aiohttp
from report import CHAT, StreamClock, echo_of, report


async def main():
    clock = StreamClock()
    text = ""
    async with aiohttp.ClientSession(trust_env=True) as session:
        async with session.post(
            "https://api.openai.com/v1/chat/completions",
            headers={"Authorization": f"Bearer {os.environ['OPENAI_API_KEY']}"},
            json={**CHAT, "stream": True},
        ) as r:
            async for raw in r.content:
                line = raw.decode().strip()
                if line.startswith("data: "):
                    clock.chunk()
                    text += line
            status = r.status
    report(status=status, echo=echo_of(text), **clock.fields())


asyncio.run(main())
