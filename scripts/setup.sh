#!/usr/bin/env bash
# Installs every build, test, fuzzing, docs and notebook dependency of loglinear from Debian 12's
# own packages (bookworm + bookworm-backports for Catch2 v3). Idempotent; run as root.
# Packages come only from the Debian mirror this machine is already configured with: the
# backports source is added from the same URI that serves bookworm, never from a host named here.
# Sourcing the script (`. scripts/setup.sh`) defines its functions without running anything.
set -euo pipefail

suite=bookworm
# Written by this script; earlier versions wrote the one-line .list file.
own_sources=(loglinear-backports.sources loglinear-backports.list)

packages=(
  build-essential cmake ninja-build ccache pkg-config git
  libeigen3-dev
  libcli11-dev nlohmann-json3-dev
  python3-dev pybind11-dev python3-pybind11 python3-numpy python3-matplotlib python3-scipy
  jupyter-nbconvert python3-nbclient python3-ipykernel python3-nbformat
  doxygen graphviz libjs-mathjax
  bible-kjv bible-kjv-text
  python3-hypothesis clang libclang-rt-14-dev
  python3-torch
  libopenmpi-dev openmpi-bin
)
# python3-torch (1.13, CPU only, about 1 min to install): the tests of loglinear.torch (issue 15).
# OpenMPI: context parallelism over MPI and its mpirun tests (issue 17).

# apt_source_files [APT_DIR]: the source files apt reads, in apt's order (sources.list, then
# sources.list.d/*.list and *.sources by name), leaving out the ones this script writes.
apt_source_files() {
  local dir=${1:-/etc/apt} f
  if [ -f "$dir/sources.list" ]; then printf '%s\n' "$dir/sources.list"; fi
  for f in "$dir"/sources.list.d/*.list "$dir"/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    case " ${own_sources[*]} " in *" ${f##*/} "*) continue ;; esac
    printf '%s\n' "$f"
  done | LC_ALL=C sort
}

# apt_source_for_suite SUITE [APT_DIR]: the first enabled `deb` source serving SUITE exactly.
# Prints its URI on the first line and, when the source names a keyring, its Signed-By value on
# the following lines (deb822 continuation lines kept verbatim). Returns 1 when none serves it.
# Reads both formats: one-line ("deb [opt=val ...] URI SUITE COMPONENT...") and deb822
# (paragraphs of "Types:", "URIs:", "Suites:", "Enabled:", "Signed-By:").
apt_source_for_suite() {
  local want=$1 dir=${2:-/etc/apt} files
  files=$(apt_source_files "$dir")
  [ -n "$files" ] || return 1
  # shellcheck disable=SC2086  # one file per line, no spaces in apt's file names
  awk -v want="$want" '
    function has(list, word,   n, i, w) {
      n = split(list, w, /[ \t]+/)
      for (i = 1; i <= n; i++) if (w[i] == word) return 1
      return 0
    }
    function emit(uri, signed) {
      print uri
      if (signed != "") print signed
      found = 1
      exit 0
    }
    # deb822: decide on the paragraph collected so far, then forget it.
    function flush(   u) {
      if (types != "" && has(types, "deb") && has(suites, want) && tolower(enabled) != "no" && uris != "") {
        split(uris, u, /[ \t]+/)
        emit(u[1], signed)
      }
      types = uris = suites = enabled = signed = field = ""
    }
    FNR == 1 { flush(); deb822 = (FILENAME ~ /\.sources$/) }
    deb822 {
      if ($0 ~ /^#/) next
      if ($0 ~ /^[ \t]*$/) { flush(); next }
      if ($0 ~ /^[ \t]/) {                        # continuation of the previous field
        if (field == "signed-by") signed = signed "\n" $0
        else if (field == "uris") uris = uris " " $0
        else if (field == "suites") suites = suites " " $0
        else if (field == "types") types = types " " $0
        next
      }
      colon = index($0, ":")
      if (colon == 0) next
      field = tolower(substr($0, 1, colon - 1))
      value = substr($0, colon + 1)
      sub(/^[ \t]+/, "", value); sub(/[ \t]+$/, "", value)
      if (field == "types") types = value
      else if (field == "uris") uris = value
      else if (field == "suites") suites = value
      else if (field == "enabled") enabled = value
      else if (field == "signed-by") signed = value
      next
    }
    {
      line = $0
      sub(/#.*/, "", line)                        # one-line format: "#" starts a comment
      n = split(line, f, /[ \t]+/)
      i = (f[1] == "") ? 2 : 1                    # leading blanks give an empty first field
      if (f[i] != "deb") next
      i++
      key = ""
      if (substr(f[i], 1, 1) == "[") {            # options: [a=b c=d] or [ a=b ]
        opts = ""
        while (i <= n) {
          opts = opts " " f[i]
          if (f[i] ~ /\]$/) { i++; break }
          i++
        }
        gsub(/[][]/, " ", opts)
        m = split(opts, o, /[ \t]+/)
        for (j = 1; j <= m; j++) if (tolower(o[j]) ~ /^signed-by=/) key = substr(o[j], 11)
      }
      if (i + 1 <= n && f[i + 1] == want) emit(f[i], key)
    }
    END { if (!found) { flush(); if (!found) exit 1 } }
  ' $files
}

# backports_stanza URI [SIGNED_BY]: the deb822 paragraph for bookworm-backports from URI.
backports_stanza() {
  printf 'Types: deb\nURIs: %s\nSuites: %s-backports\nComponents: main\n' "$1" "$suite"
  if [ -n "${2:-}" ]; then printf 'Signed-By: %s\n' "$2"; fi
}

# ensure_backports [APT_DIR]: bookworm-backports is configured afterwards, from the mirror that
# serves bookworm. Writes (or rewrites) only this script's own file, and only when it changes.
ensure_backports() {
  local dir=${1:-/etc/apt} found uri signed want own="${1:-/etc/apt}/sources.list.d/${own_sources[0]}"
  rm -f "$dir/sources.list.d/${own_sources[1]}"
  if found=$(apt_source_for_suite "$suite-backports" "$dir"); then
    echo "[setup] $suite-backports already configured: ${found%%$'\n'*}"
    rm -f "$own"
    return 0
  fi
  if ! found=$(apt_source_for_suite "$suite" "$dir"); then
    echo "scripts/setup.sh: no enabled apt source serves '$suite' in $dir/sources.list or" \
         "$dir/sources.list.d/ (*.list, *.sources); configure a Debian mirror first" >&2
    return 1
  fi
  uri=${found%%$'\n'*}
  signed=$([ "$found" = "$uri" ] || printf '%s' "${found#*$'\n'}")
  want=$(backports_stanza "$uri" "$signed")
  if [ "$(cat "$own" 2>/dev/null)" != "$want" ]; then
    printf '%s\n' "$want" > "$own"
    echo "[setup] $suite-backports added from the configured mirror $uri ($own)"
  fi
}

main() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "scripts/setup.sh: must run as root (it calls apt-get); try: sudo bash scripts/setup.sh" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive

  # Catch2 v3 (native SKIP, compiled main) lives in bookworm-backports.
  ensure_backports /etc/apt

  local missing=() p
  for p in "${packages[@]}" libcatch2-dev; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "[setup] installing: ${missing[*]}"
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${packages[@]}"
    apt-get install -y -qq --no-install-recommends -t "$suite-backports" libcatch2-dev
  else
    echo "[setup] all Debian packages already installed"
  fi
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  main "$@"
fi
