#!/usr/bin/env bash
# Re-create the vendored, offline copies of reveal.js, require.js, jQuery and MathJax in slides/
# from the npm registry (`npm pack`, no build step). Only the files the decks load are kept.
# Versions follow what nbconvert's reveal/lab templates expect (see slides/README.md).
set -euo pipefail
cd "$(dirname "$0")"
REVEAL=4.0.2 REQUIRE=2.1.10 JQUERY=2.2.4 MATHJAX=2.7.7
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
for p in "reveal.js@$REVEAL" "requirejs@$REQUIRE" "jquery@$JQUERY" "mathjax@$MATHJAX"; do
  name=${p%@*}; mkdir -p "$tmp/$name"
  (cd "$tmp" && npm pack --silent "$p" >/dev/null && tar xzf ./*"${p#*@}".tgz -C "$name" && rm ./*.tgz)
done
rm -rf reveal.js vendor
r="$tmp/reveal.js/package"
mkdir -p reveal.js/dist/theme/fonts/source-sans-pro reveal.js/plugin/notes vendor/mathjax
cp "$r/LICENSE" "$r/dist/reveal.js" "$r/dist/reveal.css" --target-directory=reveal.js/dist
mv reveal.js/dist/LICENSE reveal.js/LICENSE
cp "$r/dist/theme/white.css" reveal.js/dist/theme/
s="$r/dist/theme/fonts/source-sans-pro"
cp "$s/LICENSE" "$s/source-sans-pro.css" "$s"/*.woff reveal.js/dist/theme/fonts/source-sans-pro/
cp "$r/plugin/notes/notes.js" reveal.js/plugin/notes/
cp "$tmp/requirejs/package/require.js" vendor/require.js
cp "$tmp/jquery/package/dist/jquery.min.js" vendor/jquery.min.js
cp "$tmp/jquery/package/LICENSE.txt" vendor/jquery.LICENSE.txt
m="$tmp/mathjax/package"
# MathJax 2: the combined TeX -> CommonHTML configuration, the extensions it loads at run
# time and the TeX woff fonts of the CommonHTML output (found by logging a deck's requests).
while read -r f; do
  [ -n "$f" ] || continue
  mkdir -p "vendor/mathjax/$(dirname "$f")"; cp "$m/$f" "vendor/mathjax/$f"
done < mathjax-files.txt
du -sh reveal.js vendor
