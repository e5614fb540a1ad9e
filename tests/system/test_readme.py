"""Every ```python block of the README runs, on its own, and prints what it should."""

import re
import subprocess
import sys

import pytest

from tests.helpers.tools import REPO, env

BLOCKS = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(), re.S)


def test_readme_has_examples():
    assert len(BLOCKS) == 3


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_block_runs(index):
    result = subprocess.run(
        [sys.executable, "-c", BLOCKS[index]], capture_output=True, text=True, timeout=60,
        env=env(), cwd=REPO,
    )
    assert result.returncode == 0, result.stderr
    expected = [
        ["aiospead2", "4.5.1"],
        ["1 [0. 0. 0.]", "2 [1. 1. 1.]", "3 [2. 2. 2.]"],
        ["[0 1 2 3]"],
    ][index]
    assert result.stdout.split("\n")[: len(expected)] == expected
