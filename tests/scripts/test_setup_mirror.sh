#!/usr/bin/env bash
# Tests scripts/setup.sh's mirror parsing (apt_source_for_suite) and ensure_backports against this
# machine's real apt sources (read-only) and against sample source trees in a temporary folder.
# Usage: bash test_setup_mirror.sh [path/to/setup.sh]; needs no root, writes only under mktemp -d.
set -uo pipefail
setup=${1:-scripts/setup.sh}
# shellcheck source=/dev/null
. "$setup"
set +e
fails=0
check() {  # check NAME EXPECTED ACTUAL
  if [ "$2" == "$3" ]; then echo "ok   $1"; else echo "FAIL $1"; printf '  expected: %q\n  got:      %q\n' "$2" "$3"; fails=$((fails + 1)); fi
}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
mk() { rm -rf "$tmp/apt"; mkdir -p "$tmp/apt/sources.list.d"; }

# 1. This machine: the URI that serves bookworm, as apt itself sees it.
real=$(apt_source_for_suite bookworm /etc/apt | head -n 1)
apt_says=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' 2>/dev/null | awk '$2 == "bookworm" { sub(/\/$/, "", $1); print $1; exit }')
check "real sources: apt_source_for_suite agrees with apt-get indextargets ($apt_says)" "$apt_says" "${real%/}"

# 2. One-line /etc/apt/sources.list, with comments, deb-src, options and other suites.
mk
cat > "$tmp/apt/sources.list" <<'S'
# deb http://wrong.example/debian bookworm main
deb-src http://src.example/debian bookworm main
deb http://security.example/debian-security bookworm-security main
deb [arch=amd64 signed-by=/usr/share/keyrings/mirror.gpg] http://mirror.example/debian/ bookworm main contrib # the mirror
deb http://later.example/debian bookworm main
S
check "one-line: first deb line for bookworm, options skipped, keyring kept" \
  $'http://mirror.example/debian/\n/usr/share/keyrings/mirror.gpg' "$(apt_source_for_suite bookworm "$tmp/apt")"
check "one-line: bookworm-security is its own suite" "http://security.example/debian-security" \
  "$(apt_source_for_suite bookworm-security "$tmp/apt")"
apt_source_for_suite bookworm-backports "$tmp/apt" >/dev/null; check "one-line: no backports -> status 1" 1 $?

# 3. Spaced options "[ arch=amd64 ]" and a .list in sources.list.d.
mk
echo 'deb [ arch=amd64 trusted=yes ] https://mirror2.example/deb bookworm main' > "$tmp/apt/sources.list.d/m.list"
check "one-line: spaced options" "https://mirror2.example/deb" "$(apt_source_for_suite bookworm "$tmp/apt")"

# 4. deb822, as this machine has it: several paragraphs, several suites, a disabled paragraph,
#    deb-src only, comments between fields.
mk
cat > "$tmp/apt/sources.list.d/debian.sources" <<'S'
Types: deb-src
URIs: http://src.example/debian
Suites: bookworm
Components: main

Types: deb
URIs: http://disabled.example/debian
Suites: bookworm
Components: main
Enabled: no

Types: deb
# http://snapshot.example/archive/debian/20250520T000000Z
URIs: http://mirror3.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror3.example/debian-security
Suites: bookworm-security
Components: main
S
check "deb822: enabled deb paragraph among several suites" \
  $'http://mirror3.example/debian\n/usr/share/keyrings/debian-archive-keyring.gpg' \
  "$(apt_source_for_suite bookworm "$tmp/apt")"
check "deb822: bookworm-updates is found in the same paragraph" "http://mirror3.example/debian" \
  "$(apt_source_for_suite bookworm-updates "$tmp/apt" | head -n 1)"

# 4b. deb822 with an inline key (Signed-By continuation lines) is carried over verbatim.
mk
printf 'Types: deb\nURIs: http://k.example/debian\nSuites: bookworm\nComponents: main\nSigned-By:\n -----BEGIN PGP PUBLIC KEY BLOCK-----\n .\n abc\n -----END PGP PUBLIC KEY BLOCK-----\n' > "$tmp/apt/sources.list.d/k.sources"
check "deb822: inline key kept" $'http://k.example/debian\n\n -----BEGIN PGP PUBLIC KEY BLOCK-----\n .\n abc\n -----END PGP PUBLIC KEY BLOCK-----' \
  "$(apt_source_for_suite bookworm "$tmp/apt")"

# 5. sources.list comes before sources.list.d; an empty sources.list is fine.
mk
: > "$tmp/apt/sources.list"
printf 'Types: deb\nURIs: http://a.example/debian\nSuites: bookworm\nComponents: main\n' > "$tmp/apt/sources.list.d/a.sources"
echo 'deb http://b.example/debian bookworm main' > "$tmp/apt/sources.list.d/b.list"
check "order: a.sources before b.list (apt's name order)" "http://a.example/debian" "$(apt_source_for_suite bookworm "$tmp/apt")"
echo 'deb http://first.example/debian bookworm main' > "$tmp/apt/sources.list"
check "order: sources.list first" "http://first.example/debian" "$(apt_source_for_suite bookworm "$tmp/apt")"

# 6. ensure_backports writes a deb822 file from the mirror, replaces the old .list, is idempotent.
mk
echo 'deb [signed-by=/k.gpg] http://mirror4.example/debian bookworm main' > "$tmp/apt/sources.list"
echo 'deb http://old-host.example/debian bookworm-backports main' > "$tmp/apt/sources.list.d/loglinear-backports.list"
ensure_backports "$tmp/apt" >/dev/null
check "ensure_backports: old loglinear .list removed" "no" "$([ -e "$tmp/apt/sources.list.d/loglinear-backports.list" ] && echo yes || echo no)"
check "ensure_backports: backports from the mirror" \
  $'Types: deb\nURIs: http://mirror4.example/debian\nSuites: bookworm-backports\nComponents: main\nSigned-By: /k.gpg' \
  "$(cat "$tmp/apt/sources.list.d/loglinear-backports.sources")"
before=$(stat -c %Y.%i "$tmp/apt/sources.list.d/loglinear-backports.sources"); sleep 1
check "ensure_backports: second run says nothing" "" "$(ensure_backports "$tmp/apt")"
check "ensure_backports: second run leaves the file untouched" "$before" "$(stat -c %Y.%i "$tmp/apt/sources.list.d/loglinear-backports.sources")"
echo 'deb http://mirror4.example/debian bookworm-backports main' >> "$tmp/apt/sources.list"
ensure_backports "$tmp/apt" >/dev/null
check "ensure_backports: machine's own backports -> ours removed" "no" "$([ -e "$tmp/apt/sources.list.d/loglinear-backports.sources" ] && echo yes || echo no)"

# 7. No source for bookworm: a clear error, nothing written.
mk
echo 'deb http://x.example/ubuntu jammy main' > "$tmp/apt/sources.list"
err=$(ensure_backports "$tmp/apt" 2>&1 >/dev/null); rc=$?
check "no mirror: status 1" 1 "$rc"
check "no mirror: message names the suite" "yes" "$([[ $err == *"no enabled apt source serves 'bookworm'"* ]] && echo yes || echo no)"
check "no mirror: nothing written" "" "$(ls "$tmp/apt/sources.list.d")"

# 8. The script names no archive host of its own.
check "setup.sh names no host" "" "$(grep -nE 'https?://|deb\.debian\.org|ftp\.' "$setup")"

echo "$fails failure(s)"
[ "$fails" -eq 0 ]
