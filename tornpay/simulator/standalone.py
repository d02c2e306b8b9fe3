"""`tornpay simulator`: one shared simulator process, logging like the server does."""

import asyncio
import signal

from tornpay.simulator.app import run_simulator
from tornpay.simulator.config import SimulatorConfig


def standalone_config(settings, address: str, port: int) -> SimulatorConfig:
    """The settings' simulator, whose public URL is simulator.public_url or its own address."""
    public = (getattr(settings.simulator, "public_url", "") or "").rstrip("/")
    if not public:
        host = "127.0.0.1" if address in ("", "0.0.0.0", "::") else address
        public = f"http://{host}:{port}"
    return SimulatorConfig.from_settings(settings, public_url=public)


def serve_standalone(settings, address: str, port: int) -> None:
    """Configure logging as `tornpay serve` does (format, scrubbing) and serve until a signal."""
    from tornpay.logs import configure

    configure(settings.server.log_level, settings.server.log_format,
              secrets=settings.secret_values())
    config = standalone_config(settings, address, port)

    async def main():
        task = asyncio.ensure_future(run_simulator(config, address, port))
        for sig in (signal.SIGTERM, signal.SIGINT):
            asyncio.get_running_loop().add_signal_handler(sig, task.cancel)
        try:
            await task
        except asyncio.CancelledError:
            pass

    asyncio.run(main())
