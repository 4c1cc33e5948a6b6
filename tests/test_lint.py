import shutil
import subprocess
import sys

from conftest import REPO


def test_ruff_clean():
    ruff = shutil.which('ruff') or f'{sys.prefix}/bin/ruff'
    res = subprocess.run([ruff, 'check', REPO], capture_output=True,
                         text=True)
    assert res.returncode == 0, res.stdout + res.stderr
