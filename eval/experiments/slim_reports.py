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

With `--simplify-svg` it also drops, from every SVG polyline (a `<path>` of
one `M` and then `L` commands only, as matplotlib writes a line), each vertex
that repeats the one before it and each interior vertex of a horizontal or
vertical run that lies between its neighbours. The stroke covers the same
points: the path keeps its ends (so its caps), its turns and its length (so its
dashes), and a straight run has no visible join. matplotlib draws a step
function sampled at n points (`ax.step`) as 2n vertices, most of them on
such runs: a Table 1 performance profile drops from 603 KB to about 50 KB.
Curves (`C`, `Q`), several subpaths and a path that would shrink to one
point are left as written.

  python -m eval.experiments.slim_reports reports [--dry-run] [--simplify-svg]
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
SVG_PATH = re.compile(r'(<path\b[^>]*?\sd=")([^"]*)(")')
SVG_VERTEX = re.compile(r"([ML]) (-?\d+(?:\.\d+)?) (-?\d+(?:\.\d+)?)")


@dataclasses.dataclass(frozen=True)
class Plan:
  """What a run changes under one directory.

  Attributes:
    texts: each md, html or svg file that changes, with its new text.
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


def _between(a: tuple, b: tuple, c: tuple) -> bool:
  """Whether vertex b lies on the horizontal or vertical segment from a to c."""
  (ax, ay), (bx, by), (cx, cy) = ((float(x), float(y)) for _, x, y in (a, b, c))
  return (ay == by == cy and min(ax, cx) <= bx <= max(ax, cx)) or (
    ax == bx == cx and min(ay, cy) <= by <= max(ay, cy)
  )


def polyline(d: str) -> str:
  """The path data `d` without repeated vertices and interior vertices of straight runs.

  Only a polyline (`M x y`, then `L x y` ..., optionally `z`) changes; any other `d`, and one
  that would keep a single vertex, is returned as it is.
  """
  commands = d.split()
  closed = commands[-1:] == ["z"]
  body = " ".join(commands[:-1] if closed else commands)
  vertices = SVG_VERTEX.findall(body)
  if not vertices or " ".join(" ".join(v) for v in vertices) != body:
    return d
  if vertices[0][0] != "M" or any(v[0] != "L" for v in vertices[1:]):
    return d
  kept = [vertices[0]]
  for vertex in vertices[1:]:
    if vertex[1:] == kept[-1][1:]:
      continue
    if len(kept) >= 2 and _between(kept[-2], kept[-1], vertex):
      kept[-1] = vertex
    else:
      kept.append(vertex)
  if len(kept) == len(vertices) or len(kept) < 2:
    return d
  return "".join(f"{c} {x} {y} \n" for c, x, y in kept) + ("z\n" if closed else "")


def svg_text(text: str) -> str:
  """`text` (an SVG) with every polyline's data simplified by `polyline`."""
  return SVG_PATH.sub(lambda m: m.group(1) + polyline(m.group(2)) + m.group(3), text)


def _rewrite(path: Path, text: str) -> tuple[str, list[str]]:
  """The new text of one md, html or svg file, and what it left as it was."""
  if path.suffix == ".svg":
    return svg_text(text), []
  rewrite = markdown_text if path.suffix == ".md" else html_text
  return rewrite(text, path.parent)


def plan(root: Path, simplify_svg: bool = False) -> Plan:
  """The changes that slim every md and html (and svg if `simplify_svg`) under `root`."""
  suffixes = (".md", ".html", ".svg") if simplify_svg else (".md", ".html")
  texts, kept = {}, []
  for path in sorted(root.rglob("*")):
    if path.suffix not in suffixes or not path.is_file():
      continue
    try:
      old = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
      kept.append(f"{path}: kept as it is, not UTF-8 text")
      continue
    new, left = _rewrite(path, old)
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
  parser.add_argument(
    "--simplify-svg", action="store_true", help="drop the redundant vertices of SVG polylines"
  )
  args = parser.parse_args(argv)
  if not args.root.is_dir():
    print(
      f"slim_reports: {args.root} is not a directory; give the directory that holds the"
      " reports, e.g. reports",
      file=sys.stderr,
    )
    return 2
  changes = plan(args.root, args.simplify_svg)
  report = summary(changes, args.dry_run)
  if not args.dry_run:
    try:
      apply(changes)
    except OSError as err:
      print(
        f"slim_reports: {err.filename}: {err.strerror}; nothing after it changed", file=sys.stderr
      )
      return 1
  print(report)
  return 0


if __name__ == "__main__":
  sys.exit(main())
