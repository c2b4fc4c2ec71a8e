#!/usr/bin/env bash
# Install the Debian packages listed in the given list files (default: the run-time list) that are
# not installed yet. `make install` passes the run-time list; `make test` adds the test list.
set -euo pipefail
here="$(dirname "$0")"
lists=("$@")
(( ${#lists[@]} )) || lists=("$here/debian-packages.txt")
missing=()
for list in "${lists[@]}"; do
  while read -r pkg; do
    [[ -z "$pkg" || "$pkg" == \#* ]] && continue
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done < "$list"
done
if (( ${#missing[@]} )); then
  echo "installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
