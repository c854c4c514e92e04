#!/usr/bin/env bash
# Re-vendor the JavaScript the offline site needs, from the npm registry, into static/vendor/ (committed).
# Jupyter Book copies static/ (html_static_path) into the site's _static/; nothing is fetched from a CDN at view time.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm init -y >/dev/null && npm install --no-audit --no-fund --ignore-scripts \
  requirejs@2.3.7 @jupyter-widgets/html-manager@1.0.15 mathjax@3.2.2 >/dev/null)
out=static/vendor
rm -rf "$out/require.js" "$out/html-manager" "$out/mathjax"
mkdir -p "$out/html-manager" "$out/mathjax/output/chtml/fonts" "$out/mathjax/input/tex"
cp "$tmp/node_modules/requirejs/require.js" "$out/require.js"
cp "$tmp/node_modules/@jupyter-widgets/html-manager/dist/embed-amd.js" "$out/html-manager/"
cp "$tmp"/node_modules/@jupyter-widgets/html-manager/dist/*.woff* "$out/html-manager/"
mj="$tmp/node_modules/mathjax/es5"
cp "$mj/tex-chtml.js" "$out/mathjax/"
cp -r "$mj/output/chtml/fonts/woff-v2" "$out/mathjax/output/chtml/fonts/"
cp -r "$mj/input/tex/extensions" "$out/mathjax/input/tex/"
cp -r "$mj/a11y" "$mj/ui" "$out/mathjax/"
for p in requirejs @jupyter-widgets/html-manager mathjax; do
  node -e "const p=require('$tmp/node_modules/$p/package.json'); console.log(p.name+' '+p.version+' ('+p.license+')')"
done > "$out/VERSIONS"
