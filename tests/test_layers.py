"""pyproject.toml's [tool.importlinter] contracts hold: the same check as `lint-imports`, in every test run.

An edge (CLI, API, UI) may import the core; the core never imports an edge, the engine never imports the
studio or the queue, and memory planning imports nothing that loads or runs a model. On failure the
report printed above the assertion names each import that breaks a contract, with its line.
"""

from __future__ import annotations

from importlinter.cli import lint_imports

from tests.conftest import REPO_ROOT

EXIT_OK = 0


def test_import_contracts_are_kept() -> None:
    # The graph is built from the imagestudio that pytest imports (this checkout's src/); no cache, so a
    # run never reads another checkout's results.
    code = lint_imports(config_filename=str(REPO_ROOT / "pyproject.toml"), no_cache=True, no_logo=True)
    assert code == EXIT_OK, "an import breaks a layer contract: see the report above"
