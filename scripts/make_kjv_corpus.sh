#!/usr/bin/env bash
# Writes the public-domain King James Bible text (Debian's bible-kjv package) to $1, one verse per
# line, without chapter headings or verse numbers: the corpus of the character-level LM task.
# Deterministic (~4.1 MB). Run by the CMake target kjv_corpus; never committed.
set -euo pipefail
out=${1:?usage: scripts/make_kjv_corpus.sh OUTPUT_FILE}
if ! command -v bible >/dev/null 2>&1; then
  echo "make_kjv_corpus.sh: the 'bible' program is missing; run scripts/setup.sh (installs bible-kjv)" >&2
  exit 1
fi
mkdir -p "$(dirname "$out")"
# Verse lines look like "  12 And God said, ..."; headings ("Genesis 1") and blank lines are dropped.
bible -l 100000 "Gen1:1-Rev22:21" </dev/null | sed -n 's/^ *[0-9][0-9]* //p' > "$out.tmp"
mv "$out.tmp" "$out"
