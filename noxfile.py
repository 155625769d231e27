"""Every automated check of the monorepo.

    nox                                  # the default sessions (what CI runs)
    nox -s "tests(package='core')"       # one package, alone with flow-core
    nox -t core                          # every session tagged for a package
    nox -s bench -- core                 # a package's benchmarks -> docs/benchmarks/core.md

Torch is installed first from ``FLOW_TORCH_SPEC`` (default ``torch==2.13.0``), so that the
packages' version ranges never pull a different (possibly multi-GB CUDA) build.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from pathlib import Path

import nox

nox.options.default_venv_backend = "virtualenv"
nox.options.sessions = ["tests", "integration", "lint", "typecheck", "docs", "template"]
nox.options.reuse_existing_virtualenvs = True

ROOT = Path(__file__).parent
PACKAGES = sorted(
    p.name.removeprefix("flow-")
    for p in (ROOT / "packages").glob("flow-*")
    if (p / "pyproject.toml").exists()
)
TORCH = os.environ.get("FLOW_TORCH_SPEC", "torch==2.13.0")
# One intra-op thread: the tests' models are tiny, and on a loaded 2-core machine torch's
# default threading makes them many times slower, not faster.
STRICT = {"FLOW_STRICT_PLUGINS": "1", "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}
# Core test modules whose outcome depends on which plugins are installed.
CORE_VS_PLUGINS = ("test_cli.py", "test_plugins.py", "test_routing.py", "test_first_party.py")
# CI sets this: each environment holds its own torch (1.5 to 3.5 GB), about 20 GB in all, so
# a session's environment is deleted once its checks have passed, to keep the disk's peak low.
PRUNE = os.environ.get("FLOW_CI_PRUNE_VENVS") == "1"


def _prune(session: nox.Session) -> None:
    """Delete the session's environment after its checks passed, where CI asks for it."""
    location = getattr(session.virtualenv, "location", None)
    if PRUNE and location:
        shutil.rmtree(location, ignore_errors=True)


def _install(session: nox.Session, *packages: str, loggers: bool = False) -> None:
    """Torch first, then flow-core and the named packages (editable, with test extras).

    ``loggers`` adds core's optional experiment loggers (TensorBoard, MLflow), which core's
    own tests need; plugin sessions leave them out.
    """
    session.install(TORCH)
    targets = ["core", *[p for p in packages if p != "core"]]
    extras = {p: "test" for p in targets} | ({"core": "test,loggers"} if loggers else {})
    session.install(*[arg for p in targets for arg in ("-e", f"packages/flow-{p}[{extras[p]}]")])


def _pulsar_files(session: nox.Session) -> dict[str, str]:
    """Real pulsar-timing files for flow-physics' par/tim tests, fetched at install time from
    two wheels (nothing downloads when the tests run): NANOGrav 9-yr par/tim/noise files from
    enterprise-pulsar 3.5.0 and PINT's clock files from pint-pulsar 0.8.8, the last release
    that shipped them. Returns the environment the tests read them from."""
    location = Path(getattr(session.virtualenv, "location", None) or tempfile.mkdtemp())
    root = location / "pulsar-files"
    wheels = {
        "enterprise_pulsar-3.5.0-py2.py3-none-any.whl": "enterprise/datafiles/ng9/",
        "pint_pulsar-0.8.8-py3-none-any.whl": "pint/data/runtime/",
    }
    if not all((root / prefix).is_dir() for prefix in wheels.values()):
        session.run(
            "python", "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d",
            str(root), "enterprise-pulsar==3.5.0", "pint-pulsar==0.8.8",
        )  # fmt: skip
        for wheel, prefix in wheels.items():
            with zipfile.ZipFile(root / wheel) as archive:
                members = [m for m in archive.namelist() if m.startswith(prefix)]
                archive.extractall(root, members)
    return {
        "FLOW_NG9_DIR": str(root / wheels["enterprise_pulsar-3.5.0-py2.py3-none-any.whl"]),
        "PINT_CLOCK_OVERRIDE": str(root / wheels["pint_pulsar-0.8.8-py3-none-any.whl"]),
        "FLOW_REQUIRE_REAL_DATA": "1",
    }


@nox.session
@nox.parametrize("package", [nox.param(p, id=p, tags=[p]) for p in PACKAGES])
def tests(session: nox.Session, package: str) -> None:
    """One package's tests, in an environment with only flow-core and that package."""
    _install(session, package, loggers=package == "core")
    env = STRICT | (_pulsar_files(session) if package == "physics" else {})
    session.run("pytest", f"packages/flow-{package}/tests", *session.posargs, env=env)
    _prune(session)


@nox.session(tags=PACKAGES)
def integration(session: nox.Session) -> None:
    """Every package installed: the root tests/ and, against all plugins, the core tests that
    look at the installed plugins (the command line, plugin loading, option routing); the rest
    of the core suite runs in tests(core)."""
    _install(session, *PACKAGES, loggers=True)
    core = [f"packages/flow-core/tests/{name}" for name in CORE_VS_PLUGINS]
    session.run("pytest", "tests", *core, *session.posargs, env=STRICT)
    _prune(session)


@nox.session(tags=PACKAGES)
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check over the whole tree."""
    session.install("ruff==0.17.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(tags=PACKAGES)
def typecheck(session: nox.Session) -> None:
    """mypy over every package (strict on flow-core, per the root pyproject)."""
    _install(session, *PACKAGES)
    session.install("mypy==2.4.1")
    session.run("mypy", *[f"packages/flow-{p}/src" for p in PACKAGES])
    _prune(session)


@nox.session(tags=PACKAGES)
def docs(session: nox.Session) -> None:
    """Build the documentation site with warnings as errors."""
    session.install("mkdocs-material>=9.5")
    session.run("mkdocs", "build", "--strict", "--site-dir", str(Path(tempfile.mkdtemp()) / "site"))


@nox.session(tags=["core"])
def template(session: nox.Session) -> None:
    """Render the plugin template, install it beside flow-core, run its tests and its task."""
    _install(session)
    out = Path(tempfile.mkdtemp(prefix="flow-template-"))
    session.run("python", "tools/new_plugin.py", "demo", "--out", str(out))
    plugin = out / "flow-demo"
    session.install("-e", f"{plugin}[test]")
    session.run("pytest", str(plugin / "tests"), "-p", "no:cacheprovider", env=STRICT)
    session.run("flow", "list", env=STRICT)
    session.run(
        "flow", "run", "demo.example", "--out", str(out / "run"), "--no-progress", env=STRICT
    )
    _prune(session)


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """``nox -s bench -- PACKAGE``: run tools/bench/PACKAGE.py, which writes
    docs/benchmarks/PACKAGE.md."""
    if not session.posargs:
        session.error(f"name a package: nox -s bench -- {{{','.join(PACKAGES)}}}")
    package = session.posargs[0]
    script = ROOT / "tools" / "bench" / f"{package}.py"
    if not script.exists():
        session.error(f"no benchmark for {package!r}: {script} does not exist")
    _install(session, package)
    requirements = script.with_suffix(".requirements.txt")
    if requirements.exists():
        session.install("-r", str(requirements))
    env = _pulsar_files(session) if package == "physics" else {}
    session.run("python", str(script), *session.posargs[1:], env=env)
