"""Every bad-input case of bad_input_cases.py in its own subprocess: a case passes when the op raised the expected
Python exception naming the argument; a crash (signal 11 and the like) is a failure of that case only.

The subprocesses run a few at a time (each imports torch and initializes CUDA, ~3 s) and are started once for the whole
module; each test then reads its own case's outcome."""
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "bad_input_cases.py")
sys.path.insert(0, HERE)
from bad_input_cases import CASES  # noqa: E402


def run_one(name):
    try:
        child = subprocess.run([sys.executable, "-X", "faulthandler", SCRIPT, "--case", name], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, timeout=300)
        return child.returncode, child.stdout
    except subprocess.TimeoutExpired as e:
        return "timeout", (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or "")


@pytest.fixture(scope="module")
def outcomes():
    workers = max(1, min(8, (os.cpu_count() or 2) // 2))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return dict(zip(CASES, pool.map(run_one, CASES)))


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input(name, outcomes):
    code, output = outcomes[name]
    if code == "timeout":
        pytest.fail(f"{name}: the subprocess hung (300 s)\n{output}")
    if isinstance(code, int) and code < 0:
        pytest.fail(f"{name}: the subprocess died with signal {-code}\n{output}")
    assert code == 0, f"{name}: exit status {code}\n{output}"
    assert f"OK   {name}:" in output, output
