#!/usr/bin/env bash
# The gateway's Windows build and a Wine to run it in, for tests/run (installer/windows/README.md).
#
#   bash tests/windows/build.sh install   Debian's Rust toolchain (rustc-web, its std source),
#                                         MinGW-w64, Wine, msitools, xmllint (when missing)
#   bash tests/windows/build.sh build     latchkey-gateway.exe (release) + the test-only
#                                         bcryptprimitives.dll shim, in target/windows/stage/
#   bash tests/windows/build.sh prefix    a Wine prefix in target/windows/wineprefix
#   bash tests/windows/build.sh env       the LATCHKEY_TEST_* variables the Wine tests read
#
# Debian's rustc 1.96 builds the standard library for x86_64-pc-windows-gnu from source
# (-Zbuild-std, allowed by RUSTC_BOOTSTRAP on this one command), beside rustup's toolchain and
# without touching it; its own target dir keeps the normal build's cache intact. Warm runs
# rebuild nothing.
set -euo pipefail
cd "$(dirname "$0")/../.."

root=$PWD/target/windows
stage=$root/stage
prefix=$root/wineprefix
wine=/usr/lib/wine/wine64
target=x86_64-pc-windows-gnu

install() {
  local missing=() pkg
  # Debian's own Rust (1.96 in bookworm's -web packages; they conflict with Debian's older
  # `rustc`/`cargo` packages, not with rustup's toolchain in ~/.cargo).
  for pkg in rustc-web cargo-web rust-web-src; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  command -v x86_64-w64-mingw32-gcc >/dev/null || missing+=(gcc-mingw-w64-x86-64)
  [ -x "$wine" ] || missing+=(wine64)
  command -v wixl >/dev/null || missing+=(wixl)
  command -v msiinfo >/dev/null || missing+=(msitools)
  command -v xmllint >/dev/null || missing+=(libxml2-utils)
  if ((${#missing[@]})); then
    if [ "$(id -u)" -ne 0 ]; then
      echo "missing: ${missing[*]}; run as root (apt-get) or install them" >&2
      exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
  /usr/bin/rustc --version
  "$wine" --version
}

build() {
  local t0=$SECONDS
  # Stripped: the symbols would triple the exe (and the MSI) for nothing a customer can use.
  RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 \
    CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=x86_64-w64-mingw32-gcc \
    CARGO_PROFILE_RELEASE_STRIP=symbols CARGO_TARGET_DIR="$root" \
    /usr/bin/cargo build --quiet --locked --release -p latchkey-gateway \
    -Zbuild-std=std,panic_abort --target "$target"
  mkdir -p "$stage"
  cp "$root/$target/release/latchkey-gateway.exe" "$stage/"
  # Test-only: Wine 8 has no bcryptprimitives.dll (tests/windows/bcryptprimitives.c says why).
  # Never shipped: the MSI takes the exe alone.
  if [ ! "$stage/bcryptprimitives.dll" -nt tests/windows/bcryptprimitives.c ]; then
    x86_64-w64-mingw32-gcc -shared -O2 -o "$stage/bcryptprimitives.dll" \
      tests/windows/bcryptprimitives.c -ladvapi32
  fi
  echo "latchkey-gateway.exe built in $((SECONDS - t0)) s ($(stat -c %s "$stage/latchkey-gateway.exe") bytes)"
}

prefix() {
  if [ ! -f "$prefix/system.reg" ]; then
    # No Mono or Gecko (they would be downloaded): nothing here needs them.
    WINEPREFIX=$prefix WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml=" "$wine" wineboot -i >/dev/null 2>&1
    # The registry files are written when the prefix's wineserver exits: wait for it.
    WINEPREFIX=$prefix /usr/lib/wine/wineserver -w
  fi
  [ -f "$prefix/system.reg" ] || { echo "wineboot did not create $prefix" >&2; exit 1; }
}

env() {
  printf 'export LATCHKEY_TEST_WINE=%q\n' "$wine"
  printf 'export LATCHKEY_TEST_WINEPREFIX=%q\n' "$prefix"
  printf 'export LATCHKEY_TEST_GATEWAY_EXE=%q\n' "$stage/latchkey-gateway.exe"
}

for cmd in "$@"; do
  case "$cmd" in
    install | build | prefix | env) "$cmd" ;;
    *) echo "unknown command: $cmd (install, build, prefix, env)" >&2; exit 2 ;;
  esac
done
