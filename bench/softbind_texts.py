"""Text corpora and edits for bench_softbind.py: real English paragraphs that ship with
what is installed here (nothing is downloaded), and the edits applied to them.

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
import random
import re
import site
import sysconfig
import warnings
from collections.abc import Callable, Iterable, Iterator

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


CORPORA: dict[str, Callable[[], list[str]]] = {"docs": docs, "licences": licences}

# ---------------------------------------------------------------- edits

Edit = Callable[[str, random.Random, list[str]], str]  # text, rng, vocabulary -> edited
LETTERS = "abcdefghijklmnopqrstuvwxyz"
_SENTENCES = re.compile(r"(?<=[.!?])\s+")


def characters(rate: float) -> Edit:
    """Each letter replaced by a random letter with probability ``rate``."""

    def edit(text: str, rng: random.Random, vocab: list[str]) -> str:
        return "".join(
            rng.choice(LETTERS) if c.isalpha() and rng.random() < rate else c for c in text
        )

    return edit


def mixed_typos(rate: float) -> Edit:
    """Each letter, with probability ``rate``: replaced, deleted, doubled or swapped with
    the next one (what fast typing does)."""

    def edit(text: str, rng: random.Random, vocab: list[str]) -> str:
        out: list[str] = []
        chars = list(text)
        i = 0
        while i < len(chars):
            c = chars[i]
            if c.isalpha() and rng.random() < rate:
                op = rng.randrange(4)
                if op == 0:
                    out.append(rng.choice(LETTERS))
                elif op == 2:
                    out += [c, rng.choice(LETTERS)]
                elif op == 3 and i + 1 < len(chars):
                    out += [chars[i + 1], c]
                    i += 1
            else:
                out.append(c)
            i += 1
        return "".join(out)

    return edit


def quote(share: float, at_least: int) -> Edit:
    """A contiguous run of ``share`` of the words (at least ``at_least``), anywhere."""

    def edit(text: str, rng: random.Random, vocab: list[str]) -> str:
        words = text.split()
        n = min(len(words), max(at_least, round(share * len(words))))
        start = rng.randrange(len(words) - n + 1)
        return " ".join(words[start : start + n])

    return edit


def reorder_sentences(text: str, rng: random.Random, vocab: list[str]) -> str:
    sentences = _SENTENCES.split(text)
    rng.shuffle(sentences)
    return " ".join(sentences)


def reorder_clauses(text: str, rng: random.Random, vocab: list[str]) -> str:
    """Paraphrase-like: inside each sentence, its comma-separated clauses in another order."""
    out = []
    for sentence in _SENTENCES.split(text):
        clauses = sentence.rstrip(".!?").split(", ")
        rng.shuffle(clauses)
        out.append(", ".join(clauses) + sentence[len(sentence.rstrip(".!?")) :])
    return " ".join(out)


def delete_sentences(text: str, rng: random.Random, vocab: list[str]) -> str:
    sentences = _SENTENCES.split(text)
    if len(sentences) < 2:
        return text
    drop = set(rng.sample(range(len(sentences)), max(1, len(sentences) // 5)))
    return " ".join(s for i, s in enumerate(sentences) if i not in drop)


def word_swaps(rate: float) -> Edit:
    """A stand-in for paraphrase: that share of words replaced by words of the corpus."""

    def edit(text: str, rng: random.Random, vocab: list[str]) -> str:
        return re.sub(
            r"[A-Za-z]+", lambda m: rng.choice(vocab) if rng.random() < rate else m.group(), text
        )

    return edit


def reformat(text: str, rng: random.Random, vocab: list[str]) -> str:
    """Re-wrapped lines, changed case, non-breaking and doubled spaces: the same words."""
    words = [w.upper() if rng.random() < 0.1 else w for w in text.split()]
    lines, line = [], []
    width = rng.randint(40, 80)
    for w in words:
        line.append(w)
        if sum(len(x) + 1 for x in line) > width:
            lines.append(" ".join(line))
            line = []
    lines.append(" ".join(line))
    return "\r\n".join(lines).replace(" ", "\u00a0", 3).replace(", ", ",  ")


def both(first: Edit, second: Edit) -> Edit:
    def edit(text: str, rng: random.Random, vocab: list[str]) -> str:
        return second(first(text, rng, vocab), rng, vocab)

    return edit


TEXT_EDITS: dict[str, Edit] = {
    "reformat (case, spacing, NFKC)": reformat,
    "characters substituted 1%": characters(0.01),
    "characters substituted 3%": characters(0.03),
    "characters substituted 5%": characters(0.05),
    "mixed typos 3% (replace/delete/double/swap)": mixed_typos(0.03),
    "quote 20% (8+ words)": quote(0.2, 8),
    "quote 30% (12+ words)": quote(0.3, 12),
    "quote 50%": quote(0.5, 12),
    "quote 30% + characters 3%": both(quote(0.3, 12), characters(0.03)),
    "sentence reordering": reorder_sentences,
    "clause reordering (paraphrase-like)": reorder_clauses,
    "sentence deletion 20%": delete_sentences,
    "word swaps 10% (paraphrase stand-in)": word_swaps(0.10),
}
# what never-recorded paragraphs of the same style are looked up as
UNRELATED_EDITS: dict[str, Edit] = {
    "whole": lambda text, rng, vocab: text,
    "characters substituted 3%": characters(0.03),
    "quote 20% (8+ words)": quote(0.2, 8),
    "quote 30% (12+ words)": quote(0.3, 12),
    "quote 50%": quote(0.5, 12),
    "sentence reordering": reorder_sentences,
}


def vocabulary(texts: list[str]) -> list[str]:
    return sorted({w for t in texts for w in re.findall(r"[A-Za-z]{3,}", t)})


if __name__ == "__main__":
    for name, make in CORPORA.items():
        ps = make()
        words = sum(len(p.split()) for p in ps)
        print(f"{name}: {len(ps)} paragraphs, {words / max(1, len(ps)):.0f} words on average")
