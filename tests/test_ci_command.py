"""CI runs exactly the README's test command, and that command type-checks before it tests."""

from __future__ import annotations

import re

from tests.conftest import REPO_ROOT


def readme_test_command() -> str:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(r"Run the tests:\n\n```bash\n(.+?)\n```", readme)
    assert found is not None, "the README has no 'Run the tests:' command"
    return found.group(1)


def test_ci_runs_the_readme_s_test_command() -> None:
    script = (REPO_ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert script.rstrip("\n").splitlines()[-1] == readme_test_command()


def test_the_test_command_type_checks_after_installing_and_before_the_tests() -> None:
    steps = [step.strip() for step in readme_test_command().split("&&")]
    install = next(i for i, step in enumerate(steps) if step.startswith("pip install") and "[test" in step)
    # mypy from the project's virtual environment, so it sees the installed libraries' types.
    assert steps.index("python -m mypy") == install + 1
    assert steps[install + 2].startswith("python -m pytest")
