"""The demo's story: what ``provmark demo`` and ``provmark serve --demo`` capture.

A small assistant answers requests in three steps, each captured with its parent, so
the lineage graph shows a pipeline: *retrieve* passages from a local corpus (a data
set with its hash), *draft* an answer from them, *summarise* the draft. Each
request is its own batch, so the log has one checkpoint per request and consistency
checks compare real growth. Along the way the story shows what a provenance product
must survive: a fallback model that answers when the requested one is down, a cover
image made from a summary, a generation that fails, a subject erased on request
(crypto-shredding: the records still verify), and a witness that cosigns the log.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..bundle import write_bundle
from ..capture.model import Model
from ..client import Provmark
from . import PROMPTS, SENTENCES, MarkovModel

CONTEXT_WORDS = 64  # the toy model's context window: longer prompts fail, and are recorded
ERASED_SUBJECT = "carol"
PROVIDER = "provmark demo"  # the store-wide provider: records of models naming none carry it
WITNESS_NAME = "witness.example/demo"


def retrieve(question: str, passages: list[str], k: int = 2) -> list[str]:
    """The passages sharing most words with the question (a keyword retriever)."""
    words = set(question.lower().split())
    ranked = sorted(passages, key=lambda p: (-len(words & set(p.split())), p))
    return ranked[:k]


def cover_png(text: str, size: int = 64) -> bytes | None:
    """A small PNG drawn from the words of ``text`` (None without Pillow)."""
    try:
        from PIL import Image, ImageDraw
    except ImportError:
        return None
    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)
    step = size // 8
    for i, word in enumerate(text.split()[:64]):
        digest = hashlib.sha256(word.encode()).digest()
        x, y = (i % 8) * step, (i // 8) * step
        draw.rectangle((x, y, x + step - 1, y + step - 1), fill=(digest[0], digest[1], digest[2]))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


class Assistant:
    """The captured pipeline: retrieve -> draft -> summarise, over one ``Provmark``."""

    def __init__(self, pm: Provmark, folder: Path) -> None:
        self.pm = pm
        weights = folder / "markov-demo.weights.json"
        corpus = list(SENTENCES)
        MarkovModel.train([w for s in corpus for w in s.split()]).save(weights)
        self.model = MarkovModel.load(weights)
        self.corpus = folder / "corpus.txt"
        self.corpus.write_text("\n".join(corpus) + "\n")
        self.corpus_sha256 = hashlib.sha256(self.corpus.read_bytes()).hexdigest()
        self.passages = corpus
        self.identity = Model(
            "provmark/markov-demo", version="1.0", provider="local", weights=weights
        )
        self.retriever = Model("provmark/keyword-retriever", version="1.0", provider="local")

    def run(self, index: int, user: str, question: str, *, fallback: bool = False) -> list[str]:
        """One request: three records, each naming its parent; the summary's text last."""
        pm = self.pm
        with pm.acting_for(user):
            with pm.record(
                model=self.retriever,
                operation="retrieval",
                input=question,
                params={"k": 2},
                tags={"app": "demo", "step": "retrieve"},
            ) as found:
                passages = retrieve(question, self.passages)
                found.add_dataset(self.corpus.resolve().as_uri(), self.corpus_sha256)
                found.set_output(json.dumps(passages), media_type="application/json")
            assert found.record_id is not None
            prompt = question + "\n" + " ".join(passages)
            with pm.record(
                model=self.identity,
                operation="text_completion",
                input=prompt,
                params={"seed": index, "max_tokens": 32, "temperature": 0.5 + (index % 3) / 4},
                parents=[found.record_id],
                tags={"app": "demo", "step": "draft"},
            ) as drafted:
                draft = self.write(prompt, seed=index, words=32, temperature=0.5 + (index % 3) / 4)
                drafted.set_output(draft)
            assert drafted.record_id is not None
            with pm.record(
                model=self.identity,
                operation="chat",
                input=f"{question}\n\nSummarise this draft: {draft}",
                params={"seed": index, "max_tokens": 24, "temperature": 1.0},
                parents=[drafted.record_id],
                tags={"app": "demo", "step": "summary"},
            ) as summarised:
                if fallback:  # the large model was asked for and did not answer
                    summarised.set_fallback(
                        "provmark/markov-large",
                        "provmark/markov-demo",
                        "503 Service Unavailable: provmark/markov-large is overloaded",
                    )
                summary = self.write(draft, seed=index, words=24, temperature=1.0)
                summarised.set_output(summary)
            assert summarised.record_id is not None
        return [found.record_id, drafted.record_id, summarised.record_id, summary]

    def write(self, prompt: str, *, seed: int, words: int, temperature: float) -> str:
        """About ``words`` words of text: sentence after sentence of the Markov model."""
        out: list[str] = []
        for k in range(10):
            if len(out) >= words:
                break
            start = out[-1] if out else prompt
            out += [
                w.strip()
                for w in self.model.stream(
                    start, seed=seed * 31 + k, max_tokens=words - len(out), temperature=temperature
                )
            ]
        return " ".join(out).replace(" .", ".").replace(" ,", ",")

    def fail(self, user: str, question: str) -> None:
        """A request over the context window: the generation fails and is recorded so.
        Its error message quotes the prompt, as real ones do: redacted like the input."""

        @self.pm.capture(model=self.identity, operation="text_completion", tags={"app": "demo"})
        def complete(prompt: str, *, max_tokens: int = 24) -> str:
            words = prompt.split()
            if len(words) > CONTEXT_WORDS:
                raise ValueError(
                    f"prompt of {len(words)} words is longer than the {CONTEXT_WORDS}-word"
                    f" context window: {' '.join(words[:12])} ..."
                )
            return self.model.generate(prompt, seed=0, max_tokens=max_tokens, temperature=1.0)

        with self.pm.acting_for(user), contextlib.suppress(ValueError):
            complete(question + "\n" + " ".join(self.passages))

    def cover(self, summary_id: str, summary: str) -> str | None:
        """A cover image for one summary (image_generation, its parent the summary)."""
        data = cover_png(summary)
        if data is None:
            return None
        painter = Model("provmark/block-painter", version="1.0", provider="local")
        with self.pm.record(
            model=painter,
            operation="image_generation",
            input=summary,
            params={"size": "64x64"},
            parents=[summary_id],
            tags={"app": "demo", "step": "cover"},
        ) as painted:
            painted.set_output(data, media_type="image/png")
        return painted.record_id


def requests(n: int) -> Iterator[tuple[int, str, str]]:
    for i in range(max(1, n)):
        user, prompt = PROMPTS[i % len(PROMPTS)]
        yield i, user, prompt


def build_demo(folder: Path, n: int = 8) -> dict[str, Any]:
    """Capture ``n`` requests (3 records each) and the rest of the story into
    ``folder/provmark.db`` (keys in ``folder/home``); return the paths and ids."""
    folder.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {}
    with Provmark.open(
        folder / "provmark.db", home=folder / "home", fingerprint=True, provider=PROVIDER
    ) as pm:
        assistant = Assistant(pm, folder)
        first: list[str] = []
        for i, user, question in requests(n):
            ids = assistant.run(i, user, question, fallback=(i == 1))
            if not first:
                first = ids
            if i == 0:
                assistant.fail(user, question)
            pm.flush()  # one batch, one checkpoint, per request
        summary_id, summary = first[2], first[3]
        original = folder / "summary.txt"
        original.write_text(summary)
        edited = folder / "summary-edited.txt"
        edited.write_text(summary.replace("the", "a", 1) if "the" in summary else summary + ".")
        cover_id = assistant.cover(summary_id, summary)
        if cover_id is not None:
            pm.flush()
            cover = folder / "cover.png"
            cover.write_bytes(cover_png(summary) or b"")
            result["cover"] = cover
            marked = mark(pm, folder, [(cover, cover_id), (original, summary_id)])
            result.update(marked)
        erasure = pm.erase(ERASED_SUBJECT, reason="erasure request from the data subject")
        result["witnesses"] = witness(pm, folder)
        verified = pm.verify(original)
        bundle_path = folder / f"{verified.record.slug}.provmark.json"
        write_bundle(pm.bundle(verified.record_id), bundle_path)
        result.update(
            original=original,
            edited=edited,
            bundle=bundle_path,
            record_id=verified.record_id,
            lineage=first[:3],
            erasure=erasure.record_id,
        )
    return result


def mark(pm: Provmark, folder: Path, outputs: list[tuple[Path, str]]) -> dict[str, Path]:
    """Each output marked with a C2PA manifest signed by a development certificate (the
    image embedded, the text in a sidecar); nothing without c2pa-python."""
    try:
        from ..disclosure.marking import mark_output
        from ..export.c2pa_certs import make_dev_cert, write_dev_cert
    except ImportError:
        return {}
    cert = write_dev_cert(make_dev_cert(), folder / "c2pa", force=True)
    out: dict[str, Path] = {}
    for path, record_id in outputs:
        stored = pm.store.get(record_id)
        assert stored is not None
        target = path.with_name(f"{path.stem}-marked{path.suffix}")
        mark_output(pm, path, target, stored, cert["chain"], cert["key"])
        out[f"{path.stem}_marked"] = target
    return out


def witness(pm: Provmark, folder: Path) -> Path:
    """A witness in ``folder/witness`` cosigns the latest checkpoint over HTTP; return the
    witnesses file a verifier passes to ``--witnesses``."""
    from ..witness import Witness, WitnessEndpoint, WitnessServer, witness_checkpoint

    directory = folder / "witness"
    w = Witness(directory) if (directory / "config.json").exists() else None
    if w is None:
        w = Witness.create(directory, WITNESS_NAME)
    try:
        w.add_log(pm.log_verifier.key_string())
        with WitnessServer(w).start() as server:
            witness_checkpoint(pm.log, [WitnessEndpoint(w.key, server.url)])
        path = folder / "witnesses.txt"
        path.write_text(f"# the demo's witness\n{w.key.vkey()} {server.url}\n")
    finally:
        w.close()
    return path
