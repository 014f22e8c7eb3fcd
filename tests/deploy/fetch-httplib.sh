#!/usr/bin/env bash
# Puts cpp-httplib's full single header at DEST_DIR/httplib.h, once, for the static build.
#
# Debian ships only a shared libcpp-httplib with a declarations-only header; a static binary
# needs the complete header, which is in Debian's source package (with Debian's security
# fixes applied). `apt-get source` runs against a private copy of apt's state so that the
# machine's package lists are left untouched; the deb-src entries are derived from the
# machine's own deb entries.
#
# Usage: fetch-httplib.sh DEST_DIR
# Exit status: 0 header ready; 77 the source package cannot be had here, reason on stderr;
# 1 anything else.
set -euo pipefail

[[ $# -eq 1 ]] || {
  echo "usage: fetch-httplib.sh DEST_DIR" >&2
  exit 1
}
dest=$1
mkdir -p -- "$dest"

full_header() {
  [[ -s "$1" ]] && grep -q 'CPPHTTPLIB_VERSION' "$1" && (($(wc -l <"$1") > 5000))
}
full_header "$dest/httplib.h" && exit 0

for tool in apt-get dpkg-source; do
  command -v "$tool" >/dev/null 2>&1 || {
    echo "fetch-httplib.sh: $tool not found (apt-get source needs apt and dpkg-dev)" >&2
    exit 77
  }
done

work=$(mktemp -d "$dest/.fetch.XXXXXX")
trap 'rm -rf -- "$work"' EXIT
mkdir -p "$work/sources.list.d" "$work/lists/partial" "$work/cache/archives/partial" "$work/src"

# deb822 .sources files: every stanza that offers binaries also offers sources.
for f in /etc/apt/sources.list.d/*.sources; do
  [[ -e "$f" ]] || continue
  sed -E 's/^Types:.*\<deb\>.*$/Types: deb-src/' "$f" >"$work/sources.list.d/$(basename -- "$f")"
done
# One-line format.
{
  if [[ -f /etc/apt/sources.list ]]; then sed -n 's/^deb /deb-src /p' /etc/apt/sources.list; fi
  for f in /etc/apt/sources.list.d/*.list; do
    [[ -e "$f" ]] && sed -n 's/^deb /deb-src /p' "$f"
  done
} >"$work/sources.list"

apt_opts=(
  -o "Dir::Etc::SourceList=$work/sources.list"
  -o "Dir::Etc::SourceParts=$work/sources.list.d"
  -o "Dir::State::Lists=$work/lists"
  -o "Dir::Cache=$work/cache"
  -o "Debug::NoLocking=1"
)
if ! apt-get "${apt_opts[@]}" update >"$work/update.log" 2>&1; then
  cat -- "$work/update.log" >&2
  echo "fetch-httplib.sh: apt-get update for deb-src failed; is the Debian archive reachable?" >&2
  exit 77
fi

# The header must match the library the dynamic build links: same Debian version.
package=cpp-httplib
if version=$(dpkg-query -W -f='${Version}' libcpp-httplib-dev 2>/dev/null) && [[ -n "$version" ]]; then
  package="cpp-httplib=$version"
fi
if ! (cd -- "$work/src" && apt-get "${apt_opts[@]}" source "$package" >"$work/source.log" 2>&1); then
  cat -- "$work/source.log" >&2
  echo "fetch-httplib.sh: 'apt-get source $package' failed" >&2
  exit 77
fi

header=$(find "$work/src" -mindepth 2 -maxdepth 2 -name httplib.h -print -quit)
if [[ -z "$header" ]] || ! full_header "$header"; then
  echo "fetch-httplib.sh: no complete httplib.h in the $package source package" >&2
  exit 1
fi
cp -- "$header" "$work/httplib.h"
mv -f -- "$work/httplib.h" "$dest/httplib.h"
echo "fetch-httplib.sh: $(grep -m1 'define CPPHTTPLIB_VERSION' "$dest/httplib.h") from $package"
