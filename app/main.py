"""Entry point of ``panel serve app``: one dashboard per browser session."""
from engine.process import sleep_when_idle

sleep_when_idle()  # before torch loads: the server's idle OpenMP threads sleep instead of spinning
from app.dashboard import Studio  # noqa: E402

Studio().__panel__().servable(title="Emulator Studio")
