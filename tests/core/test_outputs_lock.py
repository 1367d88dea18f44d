"""`outputs.held_exclusively`: one run per checkpoint, across processes and within one."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from wia_security.errors import ConfigError
from wia_security.outputs import held_exclusively


def test_a_second_holder_is_refused_naming_the_lock_and_the_first_process(tmp_path):
    checkpoint = str(tmp_path / "ck.json")
    with held_exclusively(checkpoint, "pull"):
        with pytest.raises(ConfigError) as err, held_exclusively(checkpoint, "pull"):
            pass
        probe = subprocess.run([sys.executable, "-c", "from wia_security.outputs import held_exclusively\n"
                                f"with held_exclusively({checkpoint!r}, 'pull'): pass"], capture_output=True, text=True)
    assert err.value.source == checkpoint and err.value.key == "checkpoint"
    assert f"lock {checkpoint}.lock held by process {os.getpid()}" in str(err.value)
    assert probe.returncode == 1 and "another pull is running from this checkpoint" in probe.stderr
    with held_exclusively(checkpoint, "pull"):         # released when the block ended
        assert open(f"{checkpoint}.lock").read() == f"{os.getpid()}\n"


def test_the_lock_is_released_when_the_block_raises(tmp_path):
    checkpoint = str(tmp_path / "ck.json")
    with pytest.raises(RuntimeError), held_exclusively(checkpoint, "pull"):
        raise RuntimeError("a failed run")
    with held_exclusively(checkpoint, "pull"):
        pass


def test_a_lock_file_that_cannot_be_made_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot create the lock file"), \
            held_exclusively(str(tmp_path / "missing" / "ck.json"), "pull"):
        pass
