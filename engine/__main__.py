"""``python -m engine``: the command line (engine/cli.py), with OpenMP threads that sleep when idle (set before
torch loads: engine/process.py), so a CLI run beside the dashboard's jobs does not steal their cores."""
import sys

from engine.process import sleep_when_idle

sleep_when_idle()

from engine.cli import main  # noqa: E402  (torch loads here, after the environment is set)

sys.exit(main())
