#!/bin/sh
# Offline check of the Assigned Access example against Microsoft's published
# XSDs (see SOURCE.md). Needs xmllint (Debian/Ubuntu: libxml2-utils).
# Exit status 0 only if the example validates AND a deliberately misspelled
# copy is rejected.
set -u
here=$(cd "$(dirname "$0")" && pwd)
schema="$here/assigned-access.xsd"
example="${1:-$here/example-edge-kiosk.xml}"

xmllint --noout --schema "$schema" "$example" || exit 1

tmp=$(mktemp "${TMPDIR:-/tmp}/aa-negative.XXXXXX") || exit 1
trap 'rm -f "$tmp"' EXIT
sed 's/<DefaultProfile /<DefaultProfil /' "$example" > "$tmp"
if xmllint --noout --schema "$schema" "$tmp" 2>/dev/null; then
    echo "negative check FAILED: misspelled element was accepted" >&2
    exit 1
fi
echo "negative check ok: misspelled element rejected"
