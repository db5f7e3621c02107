"""Committed reports in one figure format, SVG: the PNG twins go, the links follow.

A report used to carry every figure twice, `figures/X.png` and `figures/X.svg`,
and its html embedded the PNGs as base64 (a Table 1 report.html was 2.7 MB).
For every PNG under the given directory that has an SVG beside it (same stem),
this command

- makes each html under the directory that embeds that PNG
  (`<img ... src="data:image/png;base64,...">`, matched by the decoded bytes
  against the PNG files under the html's own directory) link the SVG instead,
  by its path relative to the html file (`figures/X.svg`, as the renderer
  writes it);
- makes each md that names `P.png`, where `P.svg` exists relative to the md's
  directory, name `P.svg` (links, code spans and prose alike);
- deletes the PNG.

Nothing else of a file changes: tables, numbers and other attributes are kept
byte for byte. An embedded image that matches no such PNG, or several, stays
embedded, and a `.png` name that resolves to no SVG stays; both are listed.
Files are written whole (atomically) before any PNG is deleted, so a run cut
short loses nothing, and a second run finds nothing to do.

  python -m eval.experiments.slim_reports reports [--dry-run]
"""

import argparse
import base64
import binascii
import dataclasses
import hashlib
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from eval.store import store as store_lib

# A relative path ending in .png, not part of a longer name, URL or absolute path.
PNG_NAME = re.compile(r"(?<![\w./:-])((?:[\w.-]+/)*[\w.-]+)\.png(?![\w-])")
EMBEDDED_PNG = re.compile(r'src="data:image/png;base64,([A-Za-z0-9+/=\s]*)"')


@dataclasses.dataclass(frozen=True)
class Plan:
  """What a run changes under one directory.

  Attributes:
    texts: each md or html file that changes, with its new text.
    deletions: the PNGs that have an SVG beside them, to delete once `texts` are written.
    kept: one line per reference left as it was, and why.
  """

  texts: dict[Path, str]
  deletions: list[Path]
  kept: list[str]


def png_twins(root: Path) -> list[Path]:
  """The PNG files under `root` that have an SVG of the same stem beside them, sorted."""
  return sorted(p for p in root.rglob("*.png") if p.is_file() and p.with_suffix(".svg").is_file())


def markdown_text(text: str, md_dir: Path) -> tuple[str, list[str]]:
  """`text` with every `P.png` whose `P.svg` exists relative to `md_dir` named `P.svg`.

  Returns the new text and the `.png` names left as they were (no SVG found for them).
  """
  unresolved = []

  def swap(match: re.Match) -> str:
    stem = match.group(1)
    if (md_dir / f"{stem}.svg").is_file():
      return f"{stem}.svg"
    unresolved.append(match.group(0))
    return match.group(0)

  return PNG_NAME.sub(swap, text), unresolved


def _digests(html_dir: Path) -> dict[str, list[Path]]:
  """sha256 of each PNG with an SVG twin under `html_dir`, to the SVGs of those bytes."""
  found: dict[str, list[Path]] = {}
  for png in png_twins(html_dir):
    found.setdefault(hashlib.sha256(png.read_bytes()).hexdigest(), []).append(png)
  return {digest: [p.with_suffix(".svg") for p in pngs] for digest, pngs in found.items()}


def html_text(text: str, html_dir: Path) -> tuple[str, list[str]]:
  """`text` with each embedded PNG that has an SVG twin under `html_dir` linking that SVG.

  Returns the new text and one line per embedded image left embedded, with the reason.
  """
  digests = _digests(html_dir)
  kept = []

  def swap(match: re.Match) -> str:
    try:
      data = base64.b64decode(match.group(1), validate=False)
    except binascii.Error:
      kept.append("an embedded PNG that is not valid base64")
      return match.group(0)
    svgs = digests.get(hashlib.sha256(data).hexdigest(), [])
    if len(svgs) != 1:
      reason = "no" if not svgs else f"{len(svgs)}"
      kept.append(f"an embedded PNG that matches {reason} PNG with an SVG beside it")
      return match.group(0)
    return f'src="{svgs[0].relative_to(html_dir).as_posix()}"'

  return EMBEDDED_PNG.sub(swap, text), kept


def plan(root: Path) -> Plan:
  """The changes that slim every md and html under `root` to SVG figures."""
  texts, kept = {}, []
  for path in sorted(root.rglob("*")):
    if path.suffix not in (".md", ".html") or not path.is_file():
      continue
    old = path.read_text(encoding="utf-8")
    rewrite = markdown_text if path.suffix == ".md" else html_text
    new, left = rewrite(old, path.parent)
    kept += [f"{path}: kept {what}" for what in left]
    if new != old:
      texts[path] = new
  return Plan(texts, png_twins(root), kept)


def apply(changes: Plan) -> None:
  """Writes every text (each whole or not at all), then deletes the PNGs."""
  for path, text in changes.texts.items():
    store_lib.atomic_write(path, text.encode("utf-8"))
  for png in changes.deletions:
    png.unlink()


def _size(paths: Sequence[Path]) -> int:
  return sum(os.path.getsize(p) for p in paths)


def summary(changes: Plan, dry_run: bool) -> str:
  """What a run does (or, dry, would do), one line per file and a total; call it before `apply`."""
  rewrite, delete = ("would rewrite", "would delete") if dry_run else ("rewrote", "deleted")
  lines = [f"{rewrite} {path}" for path in changes.texts]
  lines += [f"{delete} {png}" for png in changes.deletions]
  lines += changes.kept
  saved = _size(changes.deletions) + sum(
    os.path.getsize(p) - len(t.encode("utf-8")) for p, t in changes.texts.items()
  )
  lines.append(
    f"{len(changes.texts)} text file(s) and {len(changes.deletions)} PNG(s) changed,"
    f" {saved / 2**20:.1f} MiB saved" + (" (dry run: nothing written)" if dry_run else "")
  )
  return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
  """The command line; returns the exit status (2 for a path that is not a directory)."""
  parser = argparse.ArgumentParser(
    prog="python -m eval.experiments.slim_reports", description=__doc__.splitlines()[0]
  )
  parser.add_argument("root", type=Path, help="the directory of committed reports (reports)")
  parser.add_argument("--dry-run", action="store_true", help="list the changes, change nothing")
  args = parser.parse_args(argv)
  if not args.root.is_dir():
    print(
      f"slim_reports: {args.root} is not a directory; give the directory that holds the"
      " reports, e.g. reports",
      file=sys.stderr,
    )
    return 2
  changes = plan(args.root)
  report = summary(changes, args.dry_run)
  if not args.dry_run:
    apply(changes)
  print(report)
  return 0


if __name__ == "__main__":
  sys.exit(main())
