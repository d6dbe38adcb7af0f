"""Batch card list import: our read + check of a 100,000-row xlsx against a raw read.

Run: ``.venv/bin/python bench/batch_import.py [--rows 100000] [--photos 200]``.

A 制卡明细表 with ``--rows`` rows (the template's header; valid, distinct
identity numbers; names, phones, addresses, file names, ethnicity) is written
with openpyxl's write-only mode into a temporary directory. Measured in this
process, in ``--runs`` interleaved rounds (one baseline read, then ours, each
round), so that both sides of one round see the same load on a shared machine:

* baseline: openpyxl read-only, ``iter_rows(values_only=True)`` over the
  sheet, touching every value (the least any reader must do);
* ours: :func:`gateway.batches.cardlist.read_rows` and
  :func:`~gateway.batches.cardlist.check_rows` (every rule, ethnicity required)
  with every referenced scan present in the folder and photo names given.

Every row names its photo and scan; the scans are in the folder, the photos
are not, so every row carries exactly one problem (``missing-file:photo``).
Photo image rules decode each image, so they cost the same per photo whatever
the list does; they are measured apart on ``--photos`` distinct conforming
JPEGs (milliseconds per photo).

Printed: each round's times and ratio, the median of the rounds' ratios (the
reported figure) and the ratio of the best times.

Goal: ours / baseline at most 2.0.
"""

from __future__ import annotations

import argparse
import io
import random
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from openpyxl import Workbook, load_workbook
from PIL import Image

from gateway.batches.cardlist import COLUMNS, check_rows, read_rows
from gateway.operations.completeness import check_photo

if TYPE_CHECKING:
    from collections.abc import Callable

TODAY = date(2026, 11, 23)
_WEIGHTS = tuple(pow(2, 17 - i, 11) for i in range(17))


def id_number(serial: int) -> str:
    """A valid identity number born 1970-2000, unique per ``serial`` (< 1,000,000)."""
    day = date(1970, 1, 1).toordinal() + serial % 10_000
    born = date.fromordinal(day)
    body = f"652301{born:%Y%m%d}{serial // 10_000 % 1000:03d}"
    total = sum(int(c) * w for c, w in zip(body, _WEIGHTS, strict=True))
    return body + "10X98765432"[total % 11]


def write_list(path: Path, rows: int) -> None:
    """The card list, write-only mode (constant memory)."""
    book = Workbook(write_only=True)
    sheet = book.create_sheet("制卡明细表")
    sheet.append(list(COLUMNS))
    for n in range(rows):
        sheet.append(
            [
                n + 1, f"职工{n:06d}", id_number(n), f"138{n:08d}", "新疆昌吉州昌吉市延安北路1号",
                f"p{n:06d}.jpg", f"s{n:06d}.jpg", "01",
            ]
        )  # fmt: skip
    book.save(path)


def raw_read(path: Path) -> int:
    """The baseline: every value of the first sheet, read-only."""
    book = load_workbook(path, read_only=True, data_only=True)
    count = 0
    for row in book.worksheets[0].iter_rows(values_only=True):
        for value in row:
            count += value is not None
    book.close()
    return count


def photo(seed: int) -> bytes:
    """A distinct conforming photo (358x441, 300 DPI, white background)."""
    image = Image.new("RGB", (358, 441), (255, 255, 255))
    shade = 40 + seed % 150
    image.paste((shade, shade, shade), (90 + seed % 20, 110, 270, 441))
    out = io.BytesIO()
    image.save(out, format="JPEG", dpi=(300, 300))
    return out.getvalue()


def best(runs: int, work: Callable[[], object]) -> float:
    """Best wall time of ``runs`` runs."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    """Write the list, time both readers, print the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--photos", type=int, default=200)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "list.xlsx"
        start = time.perf_counter()
        write_list(path, args.rows)
        print(f"wrote {args.rows:,} rows ({path.stat().st_size / 1e6:.1f} MB) "
              f"in {time.perf_counter() - start:.1f} s")  # fmt: skip
        scan = b"\xff\xd8\xff" + b"\0" * 1000
        files: dict[str, Callable[[], bytes]] = {
            f"s{n:06d}.jpg": (lambda: scan) for n in range(args.rows)
        }
        checked: list[int] = []

        def ours() -> None:
            rows = check_rows(read_rows(path), files, TODAY, strict=True)
            checked.append(sum(row.ok for row in rows))

        # Interleaved rounds: a busy machine slows both sides of a round alike.
        rounds: list[tuple[float, float]] = []
        for n in range(args.runs):
            baseline = best(1, lambda: raw_read(path))
            measured = best(1, ours)
            rounds.append((baseline, measured))
            print(f"round {n + 1}: baseline {baseline:.2f} s, ours {measured:.2f} s, "
                  f"ratio {measured / baseline:.2f}", flush=True)  # fmt: skip
        median = statistics.median(m / b for b, m in rounds)
        best_ratio = min(m for _, m in rounds) / min(b for b, _ in rounds)
        print(f"baseline (openpyxl read-only raw read): best {min(b for b, _ in rounds):.2f} s")
        print(f"ours (read_rows + check_rows):          best {min(m for _, m in rounds):.2f} s")
        print(f"ratio: median of rounds {median:.2f}, of best times {best_ratio:.2f} (goal <= 2.0)")
        images = [photo(random.Random(n).randrange(10_000)) for n in range(args.photos)]
        per_photo = best(1, lambda: [check_photo(image) for image in images]) / args.photos
        print(f"photo image rules: {per_photo * 1000:.2f} ms per photo")


if __name__ == "__main__":
    main()
