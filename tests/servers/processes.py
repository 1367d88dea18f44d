"""Stopping a test server started as a subprocess: SIGTERM, then SIGKILL if it is still there after 10 s."""
from __future__ import annotations

import signal
import subprocess


def stop_process(process: subprocess.Popen, timeout: float = 10) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
