"""Entry point of ``panel serve app``: one dashboard per browser session."""
from app.dashboard import Studio

Studio().__panel__().servable(title="Emulator Studio")
