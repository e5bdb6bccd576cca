#!/usr/bin/env bash
# Builds a Debian package of the portal (latchkey) or the gateway (latchkey-gateway) from the
# `[package.metadata.deb]` table of its Cargo.toml (web/, gateway/), read with `cargo metadata`.
# The keys are cargo-deb's, so `cargo deb` could build the same package; this script needs only
# dpkg-deb, dpkg-shlibdeps (dpkg-dev), strip (binutils) and python3.
#
#   installer/deb/build.sh latchkey|latchkey-gateway [--binary PATH] [--version V] [--out DIR]
#
# --binary   the program to package (default: target/release/<program>, i.e. after
#            `cargo build --release -p <package>`; add `--features hid` to the portal's build for
#            `latchkey passkey provision`: the package then depends on libudev1 by itself)
# --version  the package version (default: the crate's version)
# --out      where the .deb goes (default: target/deb)
#
# The binary is stripped. Files are owned by root in the package; the maintainer scripts
# (installer/deb/<package>/) create the system user and hand it what it needs. Compression:
# dpkg-deb's default (xz), or DPKG_DEB_COMPRESSOR_TYPE / DPKG_DEB_COMPRESSOR_LEVEL.
set -euo pipefail

die() { echo "build.sh: $*" >&2; exit 1; }
usage() { die "usage: build.sh latchkey|latchkey-gateway [--binary PATH] [--version V] [--out DIR]"; }

[ $# -ge 1 ] || usage
pkg=$1
shift
case "$pkg" in latchkey | latchkey-gateway) ;; *) usage ;; esac
binary='' version='' out=''
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) binary=${2:?}; shift 2 ;;
    --version) version=${2:?}; shift 2 ;;
    --out) out=${2:?}; shift 2 ;;
    *) usage ;;
  esac
done
for tool in cargo python3 dpkg-deb dpkg-shlibdeps strip gzip; do
  command -v "$tool" >/dev/null || die "$tool not found (Debian: apt-get install dpkg-dev binutils python3)"
done

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

# The package's metadata, as shell assignments (shlex-quoted, so eval is safe) of these:
crate_version='' summary='' license='' target_dir='' scripts_dir=''
maintainer='' copyright='' section='' priority='' depends='' extended_description=''
asset_src=() asset_dest=() asset_mode=() conffiles=()
eval "$(cargo metadata --format-version 1 --no-deps --offline | python3 -c '
import json, os, shlex, sys
pkg = sys.argv[1]
meta = json.load(sys.stdin)
[p] = [p for p in meta["packages"] if p["name"] == pkg]
deb = p["metadata"]["deb"]
crate_dir = os.path.dirname(p["manifest_path"])
def say(name, value):
    print(f"{name}={shlex.quote(value)}")
def say_array(name, values):
    print(f"{name}=(" + " ".join(shlex.quote(v) for v in values) + ")")
say("crate_version", p["version"])
say("summary", p["description"])
say("license", p["license"])
say("target_dir", meta["target_directory"])
for key in ("maintainer", "copyright", "section", "priority", "depends", "extended-description"):
    say(key.replace("-", "_"), deb[key])
say("scripts_dir", os.path.normpath(os.path.join(crate_dir, deb["maintainer-scripts"])))
sources, dests, modes = [], [], []
for src, dest, mode in deb["assets"]:
    # cargo-deb: target/release/... is the built program, anything else is relative to the crate
    sources.append(src if src.startswith("target/release/") else os.path.normpath(os.path.join(crate_dir, src)))
    dests.append(dest)
    modes.append(mode)
say_array("asset_src", sources)
say_array("asset_dest", dests)
say_array("asset_mode", modes)
say_array("conffiles", deb["conf-files"])
' "$pkg")"

version=${version:-$crate_version}
out=${out:-$target_dir/deb}
arch=$(dpkg --print-architecture)
# Reproducible: the last commit's time for the changelog and every file's mtime.
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
export SOURCE_DATE_EPOCH

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# dpkg-shlibdeps wants debian/control and the files in debian/<package>/.
stage=$work/debian/$pkg
mkdir -p "$stage/DEBIAN"
umask 022

# Assets: [source, destination (a folder when it ends in /), mode].
program=
for i in "${!asset_src[@]}"; do
  src=${asset_src[$i]} dest=${asset_dest[$i]} mode=${asset_mode[$i]}
  if [[ $src == target/release/* ]]; then
    src=${binary:-$target_dir/release/${src#target/release/}}
    [ -x "$src" ] || die "no program at $src: cargo build --release -p $pkg (or pass --binary)"
  fi
  [ -f "$src" ] || die "asset missing: $src"
  [[ $dest == */ ]] && dest=$dest$(basename "$src")
  install -D -m "$mode" "$src" "$stage/$dest"
  if [[ ${asset_src[$i]} == target/release/* ]]; then
    program=$dest
    strip --strip-unneeded --remove-section=.comment --remove-section=.note "$stage/$dest"
  fi
  # Every file under /etc must be a conffile (never overwritten on upgrade once changed).
  if [[ $dest == etc/* ]] && ! printf '%s\n' "${conffiles[@]}" | grep -qx "/$dest"; then
    die "/$dest is under /etc but not in conf-files"
  fi
done
[ -n "$program" ] || die "no target/release/... asset: which program does $pkg ship?"
for f in "${conffiles[@]}"; do
  [ -f "$stage$f" ] || die "conf-files names $f, which no asset installs"
done

# Debian policy 12.5 and 12.7: the copyright file and a compressed changelog.
doc=$stage/usr/share/doc/$pkg
install -d "$doc"
cat > "$doc/copyright" <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: $pkg

Files: *
Copyright: $copyright
License: $license
 On Debian systems, the full text of the Apache License, Version 2.0 is in
 /usr/share/common-licenses/Apache-2.0.
EOF
[ "$license" = Apache-2.0 ] || die "the copyright file above names Apache-2.0, the crate says $license"
{
  printf '%s (%s) stable; urgency=medium\n\n' "$pkg" "$version"
  printf '  * Latchkey %s.\n\n' "$version"
  printf ' -- %s  %s\n' "$maintainer" "$(date -u -R -d "@$SOURCE_DATE_EPOCH")"
} | gzip -9n > "$doc/changelog.gz"
chmod 0644 "$doc/copyright" "$doc/changelog.gz"

# Maintainer scripts and conffiles.
for script in preinst postinst prerm postrm; do
  if [ -f "$scripts_dir/$script" ]; then
    install -m 0755 "$scripts_dir/$script" "$stage/DEBIAN/$script"
  fi
done
printf '%s\n' "${conffiles[@]}" > "$stage/DEBIAN/conffiles"

# Depends: $auto becomes the shared libraries the program links (libc6, libgcc-s1; libudev1
# with the portal's `hid` feature), as dpkg-shlibdeps finds them.
# shellcheck disable=SC2016 # the literal $auto
if [[ $depends == *'$auto'* ]]; then
  printf 'Source: %s\n\nPackage: %s\nArchitecture: any\n' "$pkg" "$pkg" > "$work/debian/control"
  shlibs=$(cd "$work" && dpkg-shlibdeps -O -e"debian/$pkg/$program" | sed -n 's/^shlibs:Depends=//p')
  [ -n "$shlibs" ] || die "dpkg-shlibdeps found no dependencies for /$program"
  depends=${depends//'$auto'/$shlibs}
fi

find "$stage" -depth -newermt "@$SOURCE_DATE_EPOCH" -exec touch --no-dereference --date="@$SOURCE_DATE_EPOCH" {} +
(cd "$stage" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z | xargs -0 md5sum) > "$stage/DEBIAN/md5sums"
installed_size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
{
  echo "Package: $pkg"
  echo "Version: $version"
  echo "Architecture: $arch"
  echo "Maintainer: $maintainer"
  echo "Installed-Size: $installed_size"
  echo "Depends: $depends"
  echo "Section: $section"
  echo "Priority: $priority"
  echo "Description: $summary"
  # Extended description: each line indented by one space, empty lines as " .".
  printf '%s\n' "$extended_description" | fold -s -w 78 | sed 's/ *$//; s/^$/./; s/^/ /'
} > "$stage/DEBIAN/control"

mkdir -p "$out"
deb=$out/${pkg}_${version}_${arch}.deb
dpkg-deb --root-owner-group --build "$stage" "$deb" >/dev/null
echo "$deb"
