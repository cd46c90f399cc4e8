"""``provmark demo``: a tiny local text generator, captured end to end.

The generator is a word-level Markov chain trained on a built-in corpus and
saved as a weights file, so the demo needs no network, no GPU and no model hub.
"""

from __future__ import annotations

import itertools
import json
import random
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SENTENCES = (
    "the model reads the report and writes a short summary for the auditor .",
    "the auditor asks which model wrote the summary and whether the text was changed .",
    "a provenance record names the model , the input , the parameters and the machine .",
    "every record is signed and appended to a transparency log that only grows .",
    "the log publishes signed checkpoints so anyone can check that nothing was removed .",
    "the summary is short , the report is long , and the record proves where it came from .",
    "regulators ask for machine readable marks on generated text and images .",
    "the team ships a new model version and the records show which version wrote each answer .",
    "a customer pastes the text into the verifier and sees that it was made here .",
    "an edited copy fails the check because its hash differs from the recorded hash .",
)
CORPUS = [word for sentence in SENTENCES for word in sentence.split()]


@dataclass
class MarkovModel:
    """Bigram word model: ``weights[w]`` maps a word to its followers and counts."""

    weights: dict[str, dict[str, int]]

    @classmethod
    def train(cls, words: list[str]) -> MarkovModel:
        table: dict[str, dict[str, int]] = defaultdict(dict)
        for a, b in itertools.pairwise(words):
            table[a][b] = table[a].get(b, 0) + 1
        return cls({k: dict(sorted(v.items())) for k, v in sorted(table.items())})

    def save(self, path: Path) -> None:
        path.write_text(json.dumps({"format": "provmark-demo-markov/1", "weights": self.weights}))

    @classmethod
    def load(cls, path: Path) -> MarkovModel:
        return cls(json.loads(path.read_text())["weights"])

    def stream(
        self, prompt: str, *, seed: int, max_tokens: int, temperature: float
    ) -> Iterator[str]:
        rng = random.Random(seed)
        words = prompt.lower().split()
        word = next((w for w in reversed(words) if w in self.weights), "the")
        for i in range(max_tokens):
            followers = self.weights.get(word) or self.weights["the"]
            choices = list(followers)
            counts = [c ** (1.0 / max(temperature, 0.05)) for c in followers.values()]
            word = rng.choices(choices, counts)[0]
            yield ("" if i == 0 else " ") + word
            if word == ".":
                break

    def generate(self, prompt: str, *, seed: int, max_tokens: int, temperature: float) -> str:
        text = "".join(
            self.stream(prompt, seed=seed, max_tokens=max_tokens, temperature=temperature)
        )
        return text.replace(" ,", ",").replace(" .", ".")


PROMPTS = [
    ("alice@example.com", "Summarise the audit report for the board, reply to alice@example.com"),
    ("bob", "Which model wrote the summary? Call me at +44 20 7946 0958"),
    ("carol", "Explain the transparency log to a customer"),
    ("alice@example.com", "Draft a note on the new model version"),
    ("dave", "What do regulators ask for generated text?"),
]
