"""Soft binding: recall@1 per corpus and edit, false matches, lookup latency at 1M
fingerprints, capture cost (and what it does to embedded records/s).

    python bench/bench_softbind.py [--recorded 0.7] [--images 600] [--queries 1000]
                                   [--scale 1000000] [--quick]

Everything is here already, nothing is downloaded:

* texts: two corpora of real English paragraphs (40+ words) of different style
  (``softbind_texts.py``): the Python documentation and standard-library docstrings,
  and the licence texts of the installed packages; ``--recorded`` of each corpus is
  recorded, the rest is the never-recorded text of the same style;
* images: scikit-image's bundled sample photos (whole, and cut into 160 px
  tiles) plus generated scenes (shapes, text cards, blobs, smooth noise).

Recorded outputs go through ``pm.record`` and are fingerprinted; edited copies are
looked up with ``fuzzy_verify`` (the path ``provmark verify --fuzzy`` takes).
recall@1 = the best match is the source record. False matches = content never
recorded that gets any match. Then ``--scale`` synthetic text and image fingerprints
(random signatures, anchors and pHash/dHash codes) are added to a copy of the store
and the lookups are timed again.
"""

from __future__ import annotations

import argparse
import io
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFont, PngImagePlugin

sys.path.insert(0, str(Path(__file__).parent))
import provmark
from common import percentiles, save, table
from provmark.softbind import Fingerprinter, fuzzy_verify
from provmark.softbind import image as sbimage
from provmark.softbind.lookup import match_image, match_text
from softbind_texts import CORPORA, TEXT_EDITS, UNRELATED_EDITS, vocabulary

# ---------------------------------------------------------------- images


def sample_images() -> list[Image.Image]:
    import skimage

    folder = Path(skimage.__file__).parent / "data"
    skip = {"chessboard_RGB.png", "motorcycle_right.png", "no_time_for_that_tiny.gif"}
    out = []
    for path in sorted(folder.glob("*")):
        if path.suffix not in (".png", ".jpg") or path.name in skip:
            continue
        im = Image.open(path)
        im = im.convert("RGB")
        if min(im.size) < 100:
            continue
        out.append(im)
        w, h = im.size
        for x in range(0, w - 159, 160):
            for y in range(0, h - 159, 160):
                tile = im.crop((x, y, x + 160, y + 160))
                if np.asarray(tile.convert("L"), dtype=np.float32).std() > 20:
                    out.append(tile)
    return out


def generated(i: int) -> Image.Image:
    rng = random.Random(i)
    w, h = rng.choice([(256, 256), (320, 240), (240, 320), (384, 288)])
    kind = i % 4
    if kind == 3:  # smooth noise field in random colours
        from scipy.ndimage import gaussian_filter

        nr = np.random.default_rng(i)
        field = gaussian_filter(nr.normal(size=(h, w)), sigma=rng.uniform(4, 20))
        field = (field - field.min()) / (np.ptp(field) + 1e-9)
        c0, c1 = nr.integers(0, 256, 3), nr.integers(0, 256, 3)
        rgb = (c0[None, None, :] * (1 - field[..., None]) + c1 * field[..., None]).astype(np.uint8)
        return Image.fromarray(rgb, "RGB")
    if kind == 2:  # blobs
        from skimage.data import binary_blobs

        mask = binary_blobs(length=max(w, h), blob_size_fraction=rng.uniform(0.05, 0.2), rng=i)[
            :h, :w
        ]
        c0 = np.array([rng.randrange(256) for _ in range(3)], dtype=np.uint8)
        c1 = np.array([rng.randrange(256) for _ in range(3)], dtype=np.uint8)
        return Image.fromarray(np.where(mask[..., None], c1, c0).astype(np.uint8), "RGB")
    img = Image.new("RGB", (w, h), tuple(rng.randrange(256) for _ in range(3)))
    draw = ImageDraw.Draw(img)
    if kind == 1:  # a text card
        font = ImageFont.load_default(size=rng.randint(14, 28))
        y = rng.randint(5, 30)
        while y < h - 20:
            words = " ".join(
                rng.choice(
                    [
                        "model",
                        "record",
                        "signed",
                        "log",
                        "image",
                        "proof",
                        "audit",
                        "verify",
                        "output",
                        "key",
                    ]
                )
                for _ in range(4)
            )
            draw.text(
                (rng.randint(2, 30), y),
                words,
                fill=tuple(rng.randrange(256) for _ in range(3)),
                font=font,
            )
            y += rng.randint(22, 40)
        return img
    for _ in range(rng.randint(4, 14)):  # shapes
        x0, y0 = rng.randrange(w), rng.randrange(h)
        x1, y1 = x0 + rng.randint(10, w // 2), y0 + rng.randint(10, h // 2)
        c = tuple(rng.randrange(256) for _ in range(3))
        r = rng.random()
        if r < 0.4:
            draw.ellipse([x0, y0, x1, y1], fill=c)
        elif r < 0.8:
            draw.rectangle([x0, y0, x1, y1], fill=c)
        else:
            draw.polygon([(rng.randrange(w), rng.randrange(h)) for _ in range(3)], fill=c)
    return img


def png(im: Image.Image, meta: bool = False) -> bytes:
    buf = io.BytesIO()
    info = None
    if meta:
        info = PngImagePlugin.PngInfo()
        info.add_text("parameters", "prompt: a provenance benchmark image, steps 30, seed 1")
    im.save(buf, "PNG", pnginfo=info)
    return buf.getvalue()


def jpeg(im: Image.Image, q: int) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=q)
    return buf.getvalue()


def crop(im: Image.Image, keep: float, rng: random.Random) -> Image.Image:
    w, h = im.size
    cw, ch = round(w * keep), round(h * keep)
    x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
    return im.crop((x, y, x + cw, y + ch))


IMAGE_EDITS: dict[str, Any] = {
    "stripped metadata": lambda im, rng: png(im),
    "resize 50%": lambda im, rng: png(im.resize((im.size[0] // 2, im.size[1] // 2))),
    "JPEG quality 60": lambda im, rng: jpeg(im, 60),
    "brightness +20%": lambda im, rng: png(ImageEnhance.Brightness(im).enhance(1.2)),
    "brightness -20%": lambda im, rng: png(ImageEnhance.Brightness(im).enhance(0.8)),
    "crop 10% (90% of each side)": lambda im, rng: png(crop(im, 0.9, rng)),
    "crop 5% (95% of each side)": lambda im, rng: png(crop(im, 0.95, rng)),
    "resize 50% + JPEG 60": lambda im, rng: jpeg(im.resize((im.size[0] // 2, im.size[1] // 2)), 60),
}

# ---------------------------------------------------------------- runs


def lookup(pm: Any, fp: Fingerprinter, content: Any) -> tuple[Any, int]:
    t = time.perf_counter_ns()
    result = fuzzy_verify(pm, content, fingerprinter=fp)
    return result, time.perf_counter_ns() - t


def _ms(us: float) -> str:
    return f"{us / 1000:.2f}"


def _top(result: Any) -> str | None:
    if result.exact is not None:  # unchanged by the edit: proven, not fuzzy
        return str(result.exact.record_id)
    return result.best.record_id if result.best is not None else None


def recall_row(name: str, results: list[tuple[Any, str, int]]) -> dict[str, Any]:
    hits = sum(1 for r, want, _ in results if _top(r) == want)
    found = sum(1 for r, _, _ in results if r.matches or r.exact is not None)
    lat = percentiles([ns for _, _, ns in results])
    return {
        "edit": name,
        "queries": len(results),
        "recall@1": f"{hits / len(results):.3f}",
        "any match": f"{found / len(results):.3f}",
        "p50 ms": _ms(lat["p50_us"]),
        "p99 ms": _ms(lat["p99_us"]),
    }


def false_row(name: str, results: list[tuple[Any, int]]) -> dict[str, Any]:
    false = sum(1 for r, _ in results if r.matches)
    lat = percentiles([ns for _, ns in results])
    return {
        "unrelated content": name,
        "queries": len(results),
        "false matches": false,
        "rate": f"{false / len(results):.4%}",
        "p99 ms": _ms(lat["p99_us"]),
    }


def capture(
    pm: Any, fp: Fingerprinter, outputs: list[Any], media: str
) -> tuple[list[str], dict[str, dict[str, float]]]:
    """Record every output, then fingerprint each (compute time, and time with the
    buffered writes spread over the calls that flush)."""
    model = provmark.Model("bench/softbind", version="1")
    ids = []
    for i, out in enumerate(outputs):
        with pm.record(model=model, input=f"prompt {i}", media_type=media) as rec:
            rec.set_output(out)
        assert rec.record_id is not None
        ids.append(rec.record_id)
    pm.flush()
    costs, walls = [], []
    for rid, out in zip(ids, outputs, strict=True):
        t = time.perf_counter_ns()
        done = fp.add(rid, out, media)
        assert done.stored, done.detail
        walls.append(time.perf_counter_ns() - t)
        costs.append(int(done.cost_ms * 1e6))
    fp.flush()
    return ids, {"compute": percentiles(costs), "with_write": percentiles(walls)}


def text_corpora(share: float) -> dict[str, dict[str, Any]]:
    """Each corpus shuffled (a fixed seed) and cut: ``share`` recorded, the rest unrelated."""
    corpora: dict[str, dict[str, Any]] = {}
    for name, make in CORPORA.items():
        paragraphs = make()
        random.Random(name).shuffle(paragraphs)
        k = round(len(paragraphs) * share)
        corpora[name] = {"recorded": paragraphs[:k], "unrelated": paragraphs[k:]}
        corpora[name]["vocab"] = vocabulary(paragraphs)
        print(
            f"  {name}: {len(paragraphs)} paragraphs, "
            f"{np.mean([len(p.split()) for p in paragraphs]):.0f} words on average; "
            f"{k} recorded",
            file=sys.stderr,
        )
    return corpora


def run_text(pm: Any, fp: Fingerprinter, share: float, queries: int) -> dict[str, Any]:
    """Record ``share`` of each corpus; look up every edit of them and of the rest."""
    corpora = text_corpora(share)
    everything = [p for c in corpora.values() for p in c["recorded"]]
    ids, costs = capture(pm, fp, everything, "text/plain")
    start = 0
    for c in corpora.values():
        c["ids"] = ids[start : start + len(c["recorded"])]
        start += len(c["recorded"])
    rows, false = [], []
    for name, c in corpora.items():
        for edit_name, edit in TEXT_EDITS.items():
            rng = random.Random(f"{name} {edit_name}")
            picks = sorted(rng.sample(range(len(c["ids"])), min(queries, len(c["ids"]))))
            results = []
            for i in picks:
                r, ns = lookup(pm, fp, edit(c["recorded"][i], rng, c["vocab"]))
                results.append((r, c["ids"][i], ns))
            rows.append({"corpus": name, **recall_row(edit_name, results)})
            print("  " + str(rows[-1]), file=sys.stderr)
        for edit_name, edit in UNRELATED_EDITS.items():
            rng = random.Random(f"unrelated {name} {edit_name}")
            got = [lookup(pm, fp, edit(t, rng, c["vocab"])) for t in c["unrelated"]]
            false.append({"corpus": name, **false_row(edit_name, got)})
            print("  " + str(false[-1]), file=sys.stderr)
    return {"recall": rows, "false": false, "cost": costs, "corpora": corpora}


def image_pool(n: int, unrelated_n: int) -> tuple[list[Image.Image], list[Image.Image]]:
    """``n`` images to record and ``unrelated_n`` others (fixed seeds)."""
    samples = sample_images()
    made: list[Image.Image] = []
    i = 0
    while len(samples) + len(made) < n + unrelated_n:
        im = generated(i)
        i += 1
        if np.asarray(im.convert("L"), dtype=np.float32).std() > 8:  # not (nearly) one colour
            made.append(im)
    pool = samples + made
    random.Random(5).shuffle(pool)
    stored, unrelated = pool[:n], pool[n:]
    print(
        f"  {len(pool)} images ({len(samples)} from scikit-image, {len(made)} generated), "
        f"{len(stored)} recorded, {len(unrelated)} unrelated",
        file=sys.stderr,
    )
    return stored, unrelated


def run_images(
    pm: Any, fp: Fingerprinter, n: int, queries: int, unrelated_n: int
) -> dict[str, Any]:
    stored, unrelated = image_pool(n, unrelated_n)
    outputs = [png(im, meta=True) for im in stored]
    ids, costs = capture(pm, fp, outputs, "image/png")
    rows = []
    for name, edit in IMAGE_EDITS.items():
        erng = random.Random(name)
        picks = erng.sample(range(n), min(queries, n))
        results = []
        for i in picks:
            r, ns = lookup(pm, fp, edit(stored[i], erng))
            results.append((r, ids[i], ns))
        rows.append(recall_row(name, results))
        print("  " + str(rows[-1]), file=sys.stderr)
    jrng = random.Random(9)
    false = [
        false_row("images never recorded", [lookup(pm, fp, png(im)) for im in unrelated]),
        false_row(
            "never recorded, cropped 10%",
            [lookup(pm, fp, png(crop(im, 0.9, jrng))) for im in unrelated],
        ),
    ]
    return {
        "recall": rows,
        "false": false,
        "cost": costs,
        "stored": stored,
        "unrelated": unrelated,
        "ids": ids,
    }


# ---------------------------------------------------------------- 1M fingerprints


ANCHORS = 55  # per synthetic text: what a 65-word paragraph of the corpora has


def add_synthetic(path: Path, count: int) -> float:
    """``count`` random text fingerprints (signature, ``ANCHORS`` anchors each) and
    ``count`` random image fingerprints (two regions each), generated inside SQLite (a
    recursive CTE, ``random()`` and ``randomblob()``: no Python per row)."""
    t0 = time.perf_counter()
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=OFF")  # a throwaway copy: no journal for the fill
    db.execute("PRAGMA synchronous=OFF")
    db.execute("PRAGMA cache_size=-3000000")  # 3 GB: random inserts stay in memory
    (first,) = db.execute("SELECT coalesce(max(id), 0) + 1 FROM softbind_items").fetchone()
    series = "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ?)"
    db.execute("BEGIN")
    db.execute(
        f"INSERT INTO softbind_items (id, record_id, kind, media_type, size, shingles,"
        " signature, parts, cost_us, created_at, scheme, anchors)"
        f" {series} SELECT ? + i, 'synthetic-' || (? + i), 'text', 'text/plain', 65, 380,"
        f" randomblob(512), x'', 0, 0, 2, {ANCHORS} FROM n",
        (count - 1, first, first),
    )
    db.execute(
        f"INSERT INTO softbind_items (id, record_id, kind, media_type, size, width, height,"
        f" parts, cost_us, created_at) {series} SELECT ? + i, 'synthetic-' || (? + i), 'image',"
        " 'image/png', 65536, 256, 256, x'', 0, 0 FROM n",
        (count - 1, first + count, first + count),
    )
    db.execute(
        f"INSERT INTO softbind_codes {series}"
        " SELECT ? + i / 2, i % 2, random(), random(), abs(random()) % 16777216 FROM n",
        (2 * count - 1, first + count),
    )
    db.execute(  # in key order (SQLite sorts): appends instead of random inserts
        f"INSERT OR IGNORE INTO softbind_parts SELECT h, item, o, 4, 0 FROM ({series}"
        f" SELECT random() AS h, ? + i / {ANCHORS} AS item, (i % {ANCHORS}) / 10 AS o FROM n)"
        " ORDER BY h",
        (count * ANCHORS - 1, first),
    )
    db.execute("COMMIT")
    db.execute("ANALYZE")
    db.execute("PRAGMA journal_mode=WAL")
    db.close()
    return time.perf_counter() - t0


def run_scale(
    db: Path, home: Path, count: int, text: dict[str, Any], images: dict[str, Any], queries: int
) -> dict[str, Any]:
    big = db.with_name("scale.db")
    shutil.copy(db, big)
    build = add_synthetic(big, count)
    size_mb = big.stat().st_size / 1e6
    print(
        f"  added {count:,} text + {count:,} image fingerprints in {build:.0f}s "
        f"(file {size_mb:,.0f} MB)",
        file=sys.stderr,
    )
    rows = []
    with provmark.open(big, home=home) as pm:
        fp = Fingerprinter.for_provmark(pm)
        try:
            t0 = time.perf_counter()
            fp.store.code_hits([])  # nothing: no load
            fp.store._sync_codes()
            load = time.perf_counter() - t0
            rng = random.Random(3)
            for name in (
                "characters substituted 3%",
                "quote 30% (12+ words)",
                "word swaps 10% (paraphrase stand-in)",
            ):
                edit = TEXT_EDITS[name]
                lat, full, hits = [], [], 0
                pool = [(c, i) for c in text["corpora"].values() for i in range(len(c["recorded"]))]
                for c, i in rng.sample(pool, min(queries, len(pool))):
                    q = edit(c["recorded"][i], rng, c["vocab"])
                    t = time.perf_counter_ns()
                    match_text(fp.store, fp.keyed, q)
                    lat.append(time.perf_counter_ns() - t)
                    t = time.perf_counter_ns()
                    result = fuzzy_verify(pm, q, fingerprinter=fp)
                    full.append(time.perf_counter_ns() - t)
                    hits += _top(result) == c["ids"][i]
                rows.append(_scale_row(f"text, {name}", lat, full, hits / len(lat)))
            for name in ("JPEG quality 60", "crop 10% (90% of each side)"):
                edit = IMAGE_EDITS[name]
                lat, full, hits = [], [], 0
                picks = rng.sample(range(len(images["ids"])), min(queries, len(images["ids"])))
                for i in picks:
                    data = edit(images["stored"][i], rng)
                    _, probes = sbimage.query_probes(data, fp.keyed)
                    t = time.perf_counter_ns()
                    fp.store.code_hits(probes)
                    lat.append(time.perf_counter_ns() - t)
                    t = time.perf_counter_ns()
                    result = fuzzy_verify(pm, data, fingerprinter=fp)
                    full.append(time.perf_counter_ns() - t)
                    hits += _top(result) == images["ids"][i]
                rows.append(_scale_row(f"image, {name}", lat, full, hits / len(picks)))
            false, n_false = 0, 0
            unrelated = [t for c in text["corpora"].values() for t in c["unrelated"]]
            for t in unrelated[:queries]:
                false += bool(match_text(fp.store, fp.keyed, t)[2])
                n_false += 1
            for im in images["unrelated"][:queries]:
                false += bool(match_image(fp.store, fp.keyed, png(im))[2])
                n_false += 1
        finally:
            fp.close()
    big.unlink()
    for extra in (big.with_name(big.name + "-wal"), big.with_name(big.name + "-shm")):
        extra.unlink(missing_ok=True)
    return {
        "rows": rows,
        "build_s": build,
        "file_mb": size_mb,
        "load_codes_s": load,
        "false_matches": false,
        "false_queries": n_false,
    }


def _scale_row(name: str, lat: list[int], full: list[int], recall: float) -> dict[str, Any]:
    a, b = percentiles(lat), percentiles(full)
    return {
        "lookup": name,
        "recall@1": f"{recall:.3f}",
        "lookup p50 ms": _ms(a["p50_us"]),
        "lookup p99 ms": _ms(a["p99_us"]),
        "end-to-end p50 ms": _ms(b["p50_us"]),
        "end-to-end p99 ms": _ms(b["p99_us"]),
    }


def storage(db: Path) -> dict[str, float]:
    con = sqlite3.connect(db)
    try:
        sizes = dict(
            con.execute(
                "SELECT name, sum(pgsize) FROM dbstat WHERE name LIKE '%softbind%' GROUP BY name"
            )
        )
        kinds = dict(con.execute("SELECT kind, count(*) FROM softbind_items GROUP BY kind"))
    finally:
        con.close()
    return {
        "bytes_total": float(sum(sizes.values())),
        **{f"items_{k}": float(v) for k, v in kinds.items()},
        **{str(k): float(v) for k, v in sizes.items()},
    }


def _generator(texts: list[str] | None) -> Any:
    def gen(prompt: str, *, i: int = 0) -> str:
        return "out " + prompt if texts is None else texts[i % len(texts)] + f" {i}"

    return gen


def hot_path(n: int, outputs: list[str]) -> list[dict[str, Any]]:
    """Embedded records/s with capture-time fingerprints on (the default) and off, for
    short outputs (skipped) and paragraph outputs; records/s counts the records stored
    (``Writer.flush``), fingerprints are written on their own thread, drained after."""
    rows = []
    for kind, texts in (("short (3 words)", None), ("paragraphs (corpora)", outputs)):
        for on in (False, True):
            with tempfile.TemporaryDirectory() as d:
                pm = provmark.open(
                    Path(d) / "b.db", home=d, batch_size=2048, max_queue=20_000, fingerprint=on
                )

                wrapped = pm.capture(model=provmark.Model("bench/hot-path"))(_generator(texts))
                for i in range(500):
                    wrapped(f"warm {i}", i=i)
                pm.flush()
                t0, cpu0 = time.perf_counter(), time.process_time()
                for i in range(n):
                    wrapped(f"prompt {i}", i=i)
                pm._capture.writer.flush(600)
                records = time.perf_counter() - t0
                pm.flush(600)
                drained = time.perf_counter() - t0
                cpu = time.process_time() - cpu0
                stats = pm.fingerprinter.stats() if pm.fingerprinter is not None else {}
                pm.close()
            rows.append(
                {
                    "outputs": kind,
                    "fingerprint": "on (default)" if on else "off",
                    "records/s": round(n / records),
                    "records + fingerprints/s": round(n / drained),
                    "CPU us/record (this process)": round(cpu / n * 1e6),
                    "fingerprinted": stats.get("text", {}).get("stored", 0),
                    "not fingerprinted (backlog full)": stats.get("dropped", 0),
                }
            )
            print("  " + str(rows[-1]), file=sys.stderr)
    return rows


def scale_only(a: argparse.Namespace) -> None:
    """The 1M run on a store kept from a full run (its texts and images are rebuilt with
    the same seeds; record ids come back in capture order)."""
    db, home = a.scale_from / "softbind.db", a.scale_from / "home"
    con = sqlite3.connect(db)
    ids = {
        kind: [
            r
            for (r,) in con.execute(
                "SELECT record_id FROM softbind_items WHERE kind = ? ORDER BY id", (kind,)
            )
        ]
        for kind in ("text", "image")
    }
    con.close()
    corpora = text_corpora(a.recorded)
    start = 0
    for c in corpora.values():
        c["ids"] = ids["text"][start : start + len(c["recorded"])]
        start += len(c["recorded"])
    stored, unrelated = image_pool(a.images, a.unrelated_images)
    images = {"stored": stored, "unrelated": unrelated, "ids": ids["image"]}
    with tempfile.TemporaryDirectory() as d:
        work = Path(d) / "softbind.db"
        shutil.copy(db, work)
        scale = run_scale(work, home, a.scale, {"corpora": corpora}, images, a.scale_queries)
    print(table(f"Lookup with {a.scale:,} text + {a.scale:,} image fingerprints", scale["rows"]))
    print(
        f"false matches at scale: {scale['false_matches']} of {scale['false_queries']}; "
        f"build {scale['build_s']:.0f}s, file {scale['file_mb']:,.0f} MB, "
        f"image codes loaded in {scale['load_codes_s']:.2f}s"
    )
    print(f"saved {save('softbind_scale', {'scale': scale})}", file=sys.stderr)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--recorded", type=float, default=0.7, help="share of each corpus recorded")
    ap.add_argument("--images", type=int, default=600)
    ap.add_argument("--unrelated-images", type=int, default=3_000)
    ap.add_argument("--queries", type=int, default=1_000, help="queries per edit type")
    ap.add_argument("--scale", type=int, default=1_000_000, help="synthetic fingerprints per kind")
    ap.add_argument("--scale-queries", type=int, default=300)
    ap.add_argument("--hot-path", type=int, default=10_000, help="records per hot-path run")
    ap.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    ap.add_argument("--hot-path-only", action="store_true", help="only the capture hot path")
    ap.add_argument(
        "--scale-from",
        type=Path,
        help="only the 1M run, on a folder kept from a full run (softbind.db and home/)",
    )
    a = ap.parse_args()
    if a.scale_from is not None:
        scale_only(a)
        return
    if a.hot_path_only:
        rows = hot_path(a.hot_path, CORPORA["docs"]())
        print(table("Capture hot path: embedded SQLite records/s, fingerprints on and off", rows))
        print(f"saved {save('softbind_hot_path', {'hot_path': rows})}", file=sys.stderr)
        return
    if a.quick:
        a.images, a.queries, a.unrelated_images = 120, 100, 200
        a.scale, a.scale_queries, a.hot_path = 20_000, 50, 2_000
    print("capture hot path ...", file=sys.stderr)
    hot = hot_path(a.hot_path, CORPORA["docs"]())
    with tempfile.TemporaryDirectory() as d:
        db, home = Path(d) / "softbind.db", Path(d) / "home"
        with provmark.open(db, home=home, batch_size=2048, fingerprint=False) as pm:
            fp = Fingerprinter.for_provmark(pm)
            print("texts ...", file=sys.stderr)
            text = run_text(pm, fp, a.recorded, a.queries)
            print("images ...", file=sys.stderr)
            images = run_images(pm, fp, a.images, a.queries, a.unrelated_images)
            fp.close()
        sizes = storage(db)
        print(f"scale: {a.scale:,} synthetic fingerprints per kind ...", file=sys.stderr)
        scale = run_scale(db, home, a.scale, text, images, a.scale_queries)
    cost_rows = [
        {
            "kind": kind,
            "compute p50 ms": _ms(r["cost"]["compute"]["p50_us"]),
            "compute p99 ms": _ms(r["cost"]["compute"]["p99_us"]),
            "with writes p50 ms": _ms(r["cost"]["with_write"]["p50_us"]),
            "with writes p99 ms": _ms(r["cost"]["with_write"]["p99_us"]),
        }
        for kind, r in (("text", text), ("image", images))
    ]
    recorded = sum(len(c["recorded"]) for c in text["corpora"].values())
    print(
        table(f"Text: recall@1 per corpus and edit ({recorded:,} texts recorded)", text["recall"])
    )
    print()
    print(table("Text: false matches", text["false"]))
    print()
    print(table(f"Images: recall@1 per edit ({a.images:,} images recorded)", images["recall"]))
    print()
    print(table("Images: false matches", images["false"]))
    print()
    print(
        table(
            f"Lookup with {a.scale:,} text + {a.scale:,} image fingerprints stored", scale["rows"]
        )
    )
    print(
        f"false matches at scale: {scale['false_matches']} of {scale['false_queries']}; "
        f"build {scale['build_s']:.0f}s, file {scale['file_mb']:,.0f} MB, "
        f"image codes loaded in {scale['load_codes_s']:.2f}s"
    )
    print()
    print(
        table(
            "Capture cost per output (fingerprint; and with its share of batched writes)", cost_rows
        )
    )
    print(
        f"storage: {sizes['bytes_total'] / 1e6:.1f} MB for {int(sizes.get('items_text', 0)):,} "
        f"texts + {int(sizes.get('items_image', 0)):,} images; by table (MB): "
        + ", ".join(f"{k} {v / 1e6:.1f}" for k, v in sizes.items() if k.startswith("softbind"))
    )
    print()
    print(table("Capture hot path: embedded SQLite records/s, fingerprints on and off", hot))
    path = save(
        "softbind",
        {
            "hot_path": hot,
            "text_recall": text["recall"],
            "text_false": text["false"],
            "image_recall": images["recall"],
            "image_false": images["false"],
            "scale": scale,
            "cost": cost_rows,
            "storage": sizes,
            "params": {k: v for k, v in vars(a).items()},
        },
    )
    print(f"saved {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
