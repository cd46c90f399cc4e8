"""provmark demo: capture real generations from a tiny local model and verify them."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from .. import Model, VerificationError
from ..bundle import verify_bundle, write_bundle
from ..capture.hashing import digest_output
from ..client import open
from ..demo import CORPUS, PROMPTS, MarkovModel
from .records import _print_verified


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "demo", help="build a tiny local text generator, capture and verify its output"
    )
    p.add_argument(
        "--dir", default="provmark-demo", help="where to put the demo (default: ./provmark-demo)"
    )
    p.add_argument("-n", type=int, default=25, help="generations to capture (default 25)")
    p.add_argument("--fresh", action="store_true", help="delete the demo folder first")
    p.set_defaults(func=cmd_demo)


def build_demo(folder: Path, n: int = 25) -> dict[str, Path | str]:
    """Train the model, capture ``n`` generations into folder/provmark.db; return paths."""
    folder.mkdir(parents=True, exist_ok=True)
    weights = folder / "markov-demo.weights.json"
    MarkovModel.train(CORPUS).save(weights)
    model = MarkovModel.load(weights)
    result: dict[str, Path | str] = {}
    with open(folder / "provmark.db", home=folder / "home", fingerprint=True) as pm:
        identity = Model("provmark/markov-demo", version="1.0", provider="local", weights=weights)

        @pm.capture(model=identity, operation="text_completion", tags={"app": "demo"})
        def complete(
            prompt: str, *, seed: int = 0, max_tokens: int = 24, temperature: float = 0.8
        ) -> str:
            return model.generate(prompt, seed=seed, max_tokens=max_tokens, temperature=temperature)

        @pm.capture(model=identity, operation="chat", tags={"app": "demo", "mode": "stream"})
        def chat(prompt: str, *, seed: int = 0, max_tokens: int = 16, temperature: float = 1.0):  # type: ignore[no-untyped-def]
            yield from model.stream(
                prompt, seed=seed, max_tokens=max_tokens, temperature=temperature
            )

        first = ""
        for i in range(n):
            user, prompt = PROMPTS[i % len(PROMPTS)]
            with pm.acting_for(user):
                if i % 5 == 4:
                    text = "".join(chat(prompt, seed=i))
                else:
                    text = complete(prompt, seed=i, temperature=0.5 + (i % 3) * 0.25)
            if i == 0:
                first = text
        original = folder / "summary.txt"
        original.write_text(first)
        edited = folder / "summary-edited.txt"
        edited.write_text(first.replace("the", "a", 1) if "the" in first else first + " (edited)")
        pm.flush()
        record = pm.verify(original)
        bundle_path = folder / f"{record.record.slug}.provmark.json"
        write_bundle(pm.bundle(record.record_id), bundle_path)
        result.update(
            original=original, edited=edited, bundle=bundle_path, record_id=record.record_id
        )
    return result


def cmd_demo(args: argparse.Namespace) -> int:
    folder = Path(args.dir)
    if args.fresh and folder.exists():
        shutil.rmtree(folder)
    print(
        f"1. training a tiny Markov text generator and capturing {args.n} generations"
        f" into {folder}/provmark.db"
    )
    out = build_demo(folder, args.n)
    original, edited, bundle = Path(out["original"]), Path(out["edited"]), Path(out["bundle"])
    print(f"2. one output is saved as {original}; an edited copy as {edited}\n")
    print(f"$ provmark verify {original} --db {folder}/provmark.db --home {folder}/home")
    with open(folder / "provmark.db", home=folder / "home") as pm:
        _print_verified(pm.verify(original), str(original))
        print(f"\n$ provmark verify {edited} --db {folder}/provmark.db --home {folder}/home")
        try:
            pm.verify(edited)
            print("UNEXPECTED: the edited copy verified")
            return 1
        except VerificationError as exc:
            print(f"NOT VERIFIED  {edited}\n  failed {exc.check}: {exc.detail}")
    print(f"\n$ provmark verify {original} --bundle {bundle}   # offline: no database, no server")
    result = verify_bundle(
        __import__("provmark").load_bundle(bundle), content_sha256=digest_output(original).sha256
    )
    _print_verified(result, str(original))
    print("\nTry next:")
    print(f"  provmark log --db {folder}/provmark.db --home {folder}/home --limit 5")
    print(f"  provmark show {result.record.slug} --db {folder}/provmark.db --home {folder}/home")
    print(f"  provmark audit --db {folder}/provmark.db --home {folder}/home")
    print(
        f"  provmark verify {edited} --fuzzy --db {folder}/provmark.db --home {folder}/home"
        "   # the edited copy, found by its fingerprint (a lead, not a proof)"
    )
    return 0
