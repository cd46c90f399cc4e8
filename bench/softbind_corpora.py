"""Real English paragraphs that ship with what is installed here (nothing is downloaded).

Two styles, each a list of paragraphs of at least 40 words:

* ``docs``: technical documentation, the Python reference that ships with Python
  (``pydoc_data.topics``) and the docstrings of the standard library's modules;
* ``licences``: legal prose, the licence files of the installed Python packages
  (``*.dist-info``), ``/usr/share/common-licenses`` and the Debian ``copyright`` files.

Licences repeat each other (hundreds of packages carry the same MIT text), and so do
docstrings now and then: a paragraph is kept only when it shares no run of 8 words
with a paragraph kept before it, so "unrelated text of the same style" means text that
quotes nothing of the recorded ones (a shared 8-word run is already a quote).
"""

from __future__ import annotations

import contextlib
import glob
import importlib
import inspect
import io
import pkgutil
import re
import site
import sysconfig
import warnings
from collections.abc import Iterable, Iterator

MIN_WORDS = 40
_SKIP_MODULES = ("_", "test", "idlelib", "tkinter", "turtle", "antigravity", "this", "lib2to3")


def paragraphs(text: str) -> Iterator[str]:
    for block in re.split(r"\n\s*\n", text):
        p = " ".join(block.split()).strip(" */#")
        words = p.split()
        if len(words) < MIN_WORDS or len(words) > 400:
            continue
        letters = sum(c.isalpha() or c.isspace() for c in p)
        if letters / len(p) > 0.9:  # prose, not code, tables or copyright lists
            yield p


def distinct(texts: Iterable[str], run: int = 8) -> list[str]:
    """Drop paragraphs that share any run of ``run`` words with a kept one."""
    seen: set[tuple[str, ...]] = set()
    kept = []
    for t in texts:
        words = tuple(re.findall(r"\w+", t.casefold()))
        runs = {words[i : i + run] for i in range(len(words) - run + 1)}
        if runs and not runs & seen:
            kept.append(t)
            seen |= runs
    return kept


def _docstrings() -> Iterator[str]:
    stdlib = sysconfig.get_paths()["stdlib"]
    for info in sorted(pkgutil.iter_modules([stdlib]), key=lambda m: m.name):
        if info.name.startswith(_SKIP_MODULES):
            continue
        try:
            with (
                warnings.catch_warnings(),
                contextlib.redirect_stdout(io.StringIO()),
                contextlib.redirect_stderr(io.StringIO()),
            ):
                warnings.simplefilter("ignore")
                module = importlib.import_module(info.name)
        except BaseException:
            continue
        yield module.__doc__ or ""
        for obj in vars(module).values():
            if getattr(obj, "__module__", None) != info.name:
                continue
            if inspect.isclass(obj) or inspect.isfunction(obj):
                yield inspect.getdoc(obj) or ""
            if inspect.isclass(obj):
                for member in vars(obj).values():
                    if inspect.isfunction(member):
                        yield inspect.getdoc(member) or ""


def docs() -> list[str]:
    import pydoc_data.topics

    texts = [p for t in pydoc_data.topics.topics.values() for p in paragraphs(t)]
    texts += [p for d in _docstrings() for p in paragraphs(d)]
    return distinct(texts)


def licences() -> list[str]:
    files = []
    for root in site.getsitepackages():
        for pattern in ("*.dist-info/**/LICEN[CS]E*", "*.dist-info/**/COPYING*"):
            files += glob.glob(f"{root}/{pattern}", recursive=True)
    files += glob.glob("/usr/share/common-licenses/*") + glob.glob("/usr/share/doc/*/copyright")
    texts = []
    for path in sorted(files):
        try:
            with open(path, encoding="utf-8", errors="replace") as fh:
                texts += paragraphs(fh.read())
        except OSError:
            continue
    return distinct(texts)


CORPORA = {"docs": docs, "licences": licences}

if __name__ == "__main__":
    for name, make in CORPORA.items():
        ps = make()
        words = sum(len(p.split()) for p in ps)
        print(f"{name}: {len(ps)} paragraphs, {words / max(1, len(ps)):.0f} words on average")
