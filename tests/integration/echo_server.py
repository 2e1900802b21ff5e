#!/usr/bin/python3
"""Echo backend for loopback tests: echoes every byte; when the client
half-closes (FIN) it answers "<EOF>" and then closes its side, so a test can
see that a half-close crossed the proxy in both directions.

usage: echo_server.py PORT
"""
import asyncio
import resource
import sys


async def handle(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                writer.write(b"<EOF>")
                await writer.drain()
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionResetError, BrokenPipeError):
        pass
    finally:
        writer.close()


async def main(port):
    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=4096)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    asyncio.run(main(int(sys.argv[1])))
