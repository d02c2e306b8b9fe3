"""A loopback TCP proxy that delays every chunk by a fixed time each way (a distant database).

    python bench/delay_proxy.py LISTEN_PORT TARGET_PORT DELAY_MS

Each chunk is forwarded ``DELAY_MS`` after it arrived, in order, without
limiting throughput: a round trip through it costs 2 x DELAY_MS more, as for
a managed PostgreSQL a few milliseconds away. Listens on 127.0.0.1 only.
"""

import asyncio
import sys


async def _pump(reader, writer, delay: float) -> None:
    queue: asyncio.Queue = asyncio.Queue()
    loop = asyncio.get_running_loop()

    async def deliver():
        while True:
            due, data = await queue.get()
            if data is None:
                break
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()
        writer.close()

    sender = asyncio.ensure_future(deliver())
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            queue.put_nowait((loop.time() + delay, data))
    except ConnectionError:
        pass
    finally:
        queue.put_nowait((0.0, None))
        try:
            await sender
        except ConnectionError:
            pass


async def main(listen_port: int, target_port: int, delay: float) -> None:
    async def handle(client_reader, client_writer):
        try:
            server_reader, server_writer = await asyncio.open_connection("127.0.0.1",
                                                                         target_port)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(_pump(client_reader, server_writer, delay),
                             _pump(server_reader, client_writer, delay),
                             return_exceptions=True)

    server = await asyncio.start_server(handle, "127.0.0.1", listen_port)
    print(f"delay proxy 127.0.0.1:{listen_port} -> {target_port}, {delay * 1000:g} ms each way",
          flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]) / 1000))
