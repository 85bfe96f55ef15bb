import asyncio
import os

import aiohttp
from report import CHAT, echo_of, report


async def main():
    # trust_env: aiohttp reads HTTPS_PROXY only when asked to.
    async with aiohttp.ClientSession(trust_env=True) as session:
        async with session.post(
            "https://api.openai.com/v1/chat/completions",
            headers={"Authorization": f"Bearer {os.environ['OPENAI_API_KEY']}"},
            json=CHAT,
        ) as r:
            report(status=r.status, echo=echo_of(await r.text()))


asyncio.run(main())
