"""``make test-matrix``: the app as a site installs it, on every supported Django line.

``wheel`` builds the wheel and checks what ships in it. Each Django session makes a
fresh virtualenv, installs this repository (``pip install .``) with the drivers and
test tools pinned in ``requirements/<line>.lock``, and runs ``tests/adoption/`` from
a copy outside the repository, so ``import dashboard`` can only find the installed app.
"""

from __future__ import annotations

import email
import glob
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent
APP = ROOT / "dashboard"
# The app's runtime dependencies: drivers are the site's own, django-environ this project's.
APP_REQUIREMENTS = {"django", "django-htmx", "prometheus-client"}

# Where the copy of the adoption site imports the app from, and with what.
INSTALL_FACTS = (
    "import dashboard, django, importlib.util, sys; print(dashboard.__file__, django.get_version(),"
    " sys.version.split()[0], bool(importlib.util.find_spec('dashboard.demo')))"
)

nox.options.sessions = ["wheel", "django52", "django60", "django61", "django61_py313"]
nox.options.error_on_missing_interpreters = True
nox.options.reuse_venv = "yes"


def interpreter(version: str) -> str:
    """A working ``python<version>``: on PATH if it runs (a pyenv shim may not), else pyenv's."""
    pyenv_root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    installed = glob.glob(f"{pyenv_root}/versions/{version}.*/bin/python{version}")
    newest_first = sorted(installed, key=_release, reverse=True)
    for candidate in [shutil.which(f"python{version}"), *newest_first]:
        if candidate and _runs_as(candidate, version):
            return candidate
    return f"python{version}"  # nox then reports the interpreter as missing


def _release(path: str) -> tuple[int, ...]:
    match = re.search(r"/versions/([\d.]+)/", path)
    return tuple(int(part) for part in match.group(1).split(".")) if match else ()


def _runs_as(executable: str, version: str) -> bool:
    try:
        answer = subprocess.run(
            [executable, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except OSError:
        return False
    return answer.returncode == 0 and answer.stdout.strip() == version


def _clear_stale_build() -> None:
    # An in-tree setuptools build reuses build/lib: a module deleted (or a package
    # excluded) since the last build would still be copied into the wheel.
    shutil.rmtree(ROOT / "build", ignore_errors=True)


def _app_files() -> set[str]:
    """Every file of dashboard/ a site needs: all of it except the demo and caches."""
    files = set()
    for path in APP.rglob("*"):
        relative = path.relative_to(ROOT)
        cached = "__pycache__" in relative.parts
        demo = relative.parts[:2] == ("dashboard", "demo")
        if path.is_file() and not cached and not demo:
            files.add(relative.as_posix())
    return files


@nox.session(python=False)
def wheel(session: nox.Session) -> None:
    """The wheel ships dashboard/ with templates, static files and py.typed; nothing else."""
    _clear_stale_build()
    out = Path(session.create_tmp()) / "wheel"
    shutil.rmtree(out, ignore_errors=True)
    session.run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT))
    (built,) = out.glob("dbhealth-*.whl")
    with zipfile.ZipFile(built) as archive:
        names = set(archive.namelist())
        (metadata_name,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        metadata = email.message_from_bytes(archive.read(metadata_name))
    shipped = {n for n in names if ".dist-info/" not in n}

    missing = sorted(_app_files() - shipped)
    extra = sorted(shipped - _app_files())
    requires = {
        re.split(r"[\s<>=!~;\[(]", requirement, maxsplit=1)[0].lower()
        for requirement in metadata.get_all("Requires-Dist", [])
        if "extra ==" not in requirement
    }
    session.log(f"{built.name}: {len(shipped)} files, requires {', '.join(sorted(requires))}")
    if missing or extra or requires != APP_REQUIREMENTS:
        session.error(f"wheel: missing {missing}, unexpected {extra}, requires {sorted(requires)}")
    claimed = {
        classifier.rsplit(" :: ", 1)[1]
        for classifier in metadata.get_all("Classifier", [])
        if re.fullmatch(r"Framework :: Django :: [\d.]+", classifier)
    }
    if claimed != _tested_django_lines():
        session.error(f"classifiers name Django {sorted(claimed)}, the matrix tests "
                      f"{sorted(_tested_django_lines())}")  # fmt: skip


def _tested_django_lines() -> set[str]:
    """``{"5.2", "6.0", ...}``: the Django line pinned by each requirements/django*.lock."""
    lines = set()
    for lock in (ROOT / "requirements").glob("django*.lock"):
        pinned = re.search(r"^django==(\d+\.\d+)", lock.read_text(), re.MULTILINE)
        if pinned:
            lines.add(pinned.group(1))
    return lines


def _adoption_tests(session: nox.Session, line: str) -> None:
    _clear_stale_build()
    session.install("-r", str(ROOT / "requirements" / f"{line}.lock"), str(ROOT))

    site = Path(session.create_tmp()) / "site"
    shutil.rmtree(site, ignore_errors=True)
    (site / "tests").mkdir(parents=True)
    shutil.copy(ROOT / "tests" / "__init__.py", site / "tests")
    shutil.copytree(
        ROOT / "tests" / "adoption",
        site / "tests" / "adoption",
        ignore=shutil.ignore_patterns("__pycache__", "*.sqlite3"),
    )
    # Its own pytest.ini keeps pytest from reading this repository's pyproject.toml, and
    # pytest-django from putting the repository (and its dashboard/) on sys.path.
    (site / "pytest.ini").write_text(
        "[pytest]\n"
        "DJANGO_SETTINGS_MODULE = tests.adoption.settings\n"
        "django_find_project = false\n"
        "addopts = -ra -p no:cacheprovider\n"
        "filterwarnings =\n"
        "    error::ResourceWarning\n"
        "    error::DeprecationWarning\n"  # what the next Django line removes, in time
        "    error::PendingDeprecationWarning\n"
    )
    session.chdir(site)
    where, django, python, demo = session.run("python", "-c", INSTALL_FACTS, silent=True).split()
    if not where.startswith(session.virtualenv.location) or demo != "False":
        session.error(f"not the installed app: dashboard from {where}, demo installed: {demo}")
    session.log(f"dbhealth installed in {Path(where).parent} | Django {django} | Python {python}")
    session.run("python", "-m", "pytest", "tests/adoption", *session.posargs)


@nox.session(python=interpreter("3.11"), venv_backend="venv")
def django52(session: nox.Session) -> None:
    """Django 5.2 LTS."""
    _adoption_tests(session, "django52")


@nox.session(python=interpreter("3.12"), venv_backend="venv")
def django60(session: nox.Session) -> None:
    """Django 6.0 (needs Python 3.12+), still supported upstream beside 6.1."""
    _adoption_tests(session, "django60")


@nox.session(python=interpreter("3.12"), venv_backend="venv")
def django61(session: nox.Session) -> None:
    """The current Django 6.x."""
    _adoption_tests(session, "django61")


@nox.session(python=interpreter("3.13"), venv_backend="venv")
def django61_py313(session: nox.Session) -> None:
    """The current Django 6.x on the newest Python this machine has."""
    _adoption_tests(session, "django61")
