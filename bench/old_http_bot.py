"""The bot's HTTP mode as it was before gunicorn (commit 80010e6), for bench/slack_ack.py.

    .venv/bin/python bench/old_http_bot.py --http --bind 127.0.0.1 --port P --workers W

Loads `bot/serve/server.py` (the hand-made threaded WSGI server, SO_REUSEPORT processes) and
`bot/serve/runner.py` of that commit from git into temporary modules and runs them against today's
Bolt app, so old and new servers are measured in the same run with the same listeners.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
OLD_COMMIT = "80010e6"


def _load(name: str, path: str, directory: Path) -> ModuleType:
    source = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{OLD_COMMIT}:{path}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    file = directory / f"{name.replace('.', '_')}.py"
    file.write_text(source)
    spec = importlib.util.spec_from_file_location(name, file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--http", action="store_true", required=True)
    parser.add_argument("--bind", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with tempfile.TemporaryDirectory(prefix="old-bot-") as tmp:
        _load(
            "bot.serve.server", "bot/serve/server.py", Path(tmp)
        )  # the old runner imports it by this name
        runner = _load("old_bot_runner", "bot/serve/runner.py", Path(tmp))
        runner.run_bot(http=True, bind=args.bind, port=args.port, workers=args.workers)


if __name__ == "__main__":
    main()
