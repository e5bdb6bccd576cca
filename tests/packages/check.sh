#!/usr/bin/env bash
# The Debian packages (installer/deb/), installed for real with dpkg on this machine and purged
# again, failure included: `bash tests/packages/check.sh` as root, after
# `cargo build -p latchkey -p latchkey-gateway` (tests/run runs it after `cargo test`). It
# packages the debug programs in target/debug; LATCHKEY_BIN and LATCHKEY_GATEWAY_BIN name others.
# About 15 s.
#
#  1. the packaged unit and configuration template are installer/linux's (same hardening)
#  2. builds both packages at the crate version and at <version>~prev1
#  3. installs the previous version: the hint, every installed file's mode and owner, the system
#     users, no unit enabled, `systemd-analyze verify` silent, `systemd-analyze security` score
#  4. starts the portal as its unit would (user, umask, environment): the store is created and
#     migrated in /var/lib/latchkey (0600, latchkey); the gateway runs as its user
#  5. the administrator changes both configurations; upgrading (plain `dpkg -i`) keeps them
#     without a question, the portal starts on the same database
#  6. a version whose packaged template changed: with --force-confold the administrator's file
#     stays and the new one is left as .dpkg-dist; an unchanged conffile is updated
#  7. remove keeps configuration, data and users; purge leaves nothing (unit enabled by the
#     administrator included)
#
# Refuses to run where Latchkey is installed (packages, users or folders): it would purge them.
set -euo pipefail
cd "$(dirname "$0")/../.."
t0=$(date +%s)

fail() { echo "FAIL: $*" >&2; exit 1; }
step() { printf '\n--- %s\n' "$*"; }

[ "$(id -u)" -eq 0 ] || fail "run as root: the test installs the packages with dpkg"
for tool in dpkg dpkg-deb dpkg-shlibdeps systemd-analyze systemctl setpriv curl python3 adduser deb-systemd-helper; do
  command -v "$tool" >/dev/null || fail "$tool not found (Debian: dpkg-dev systemd curl python3 adduser)"
done

packages=(latchkey latchkey-gateway)
users=(latchkey latchkey-gateway)
# What the packages (or installer/linux/install.sh) create; the cleanup removes what is left.
owned_paths=(/etc/latchkey /etc/latchkey-gateway /var/lib/latchkey)

status_of() { dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true; }
installed() { local s; s=$(status_of "$1"); [ -n "$s" ] && [ "$s" != not-installed ]; }

for p in "${packages[@]}"; do
  ! installed "$p" || fail "refusing: package $p is installed here ($(status_of "$p")); this test would purge it"
done
for u in "${users[@]}"; do
  ! getent passwd "$u" >/dev/null || fail "refusing: user $u exists (a Latchkey install?); this test would delete it"
  ! getent group "$u" >/dev/null || fail "refusing: group $u exists (a Latchkey install?); this test would delete it"
done
for path in "${owned_paths[@]}" /usr/local/bin/latchkey /etc/systemd/system/latchkey.service; do
  [ ! -e "$path" ] || fail "refusing: $path exists (a Latchkey install?); this test would remove it"
done

latchkey_bin=$(realpath "${LATCHKEY_BIN:-target/debug/latchkey}")
gateway_bin=$(realpath "${LATCHKEY_GATEWAY_BIN:-target/debug/latchkey-gateway}")
if [ ! -x "$latchkey_bin" ] || [ ! -x "$gateway_bin" ]; then
  fail "build first: cargo build -p latchkey -p latchkey-gateway (or set LATCHKEY_BIN, LATCHKEY_GATEWAY_BIN)"
fi

work=$(mktemp -d)
running= # the service process the test started, if one runs
cleanup() {
  local rc=$?
  set +e
  [ -z "$running" ] || { kill "$running" 2>/dev/null; wait "$running" 2>/dev/null; }
  for p in "${packages[@]}"; do
    if installed "$p"; then
      echo "cleanup: purging $p" >&2
      dpkg --purge "$p" >/dev/null 2>&1 || dpkg --purge --force-remove-reinstreq "$p" >/dev/null 2>&1
    fi
  done
  # Nothing of this existed when the test started (checked above): what is left is the test's.
  for path in "${owned_paths[@]}"; do [ ! -e "$path" ] || { echo "cleanup: removing $path" >&2; rm -rf "$path"; }; done
  for u in "${users[@]}"; do
    getent passwd "$u" >/dev/null && { echo "cleanup: deleting user $u" >&2; userdel "$u"; }
    getent group "$u" >/dev/null && { echo "cleanup: deleting group $u" >&2; groupdel "$u"; }
  done
  find /etc/systemd/system /var/lib/systemd/deb-systemd-helper-enabled -name 'latchkey*' \( -type l -o -type f \) -delete 2>/dev/null
  rm -rf "$work"
  ((rc == 0)) || echo "FAILED (everything installed by the test was purged)" >&2
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step "1. the packaged unit and template are installer/linux's"
# The packaged unit = installer/linux/latchkey.service but for its leading comment and the
# binary's path (/usr/bin, not /usr/local/bin).
diff -u <(sed '1,/^\[Unit\]$/{/^#/d}; s#/usr/local/bin/latchkey#/usr/bin/latchkey#' installer/linux/latchkey.service) \
  <(sed '1,/^\[Unit\]$/{/^#/d}' installer/deb/latchkey.service) ||
  fail "installer/deb/latchkey.service differs from installer/linux/latchkey.service: change both"
diff -u <(sed -n "/<<'TOML'$/,/^TOML$/p" installer/linux/install.sh | sed '1d;$d') installer/deb/latchkey.toml ||
  fail "installer/deb/latchkey.toml differs from the template in installer/linux/install.sh: change both"
echo "same unit (ExecStart=/usr/bin/latchkey) and the same configuration template"

step "2. build the packages (current and previous version)"
# Fast compression: these packages are thrown away (build.sh's default is xz).
export DPKG_DEB_COMPRESSOR_TYPE=${DPKG_DEB_COMPRESSOR_TYPE:-gzip} DPKG_DEB_COMPRESSOR_LEVEL=${DPKG_DEB_COMPRESSOR_LEVEL:-1}
version=$(cargo metadata --format-version 1 --no-deps --offline |
  python3 -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"] == "latchkey"))')
prev="$version~prev1"
next="$version+conffile1"
build() { # package binary version -> prints the .deb
  bash installer/deb/build.sh "$1" --binary "$2" --version "$3" --out "$work/debs"
}
deb_prev=$(build latchkey "$latchkey_bin" "$prev")
gw_prev=$(build latchkey-gateway "$gateway_bin" "$prev")
deb_cur=$(build latchkey "$latchkey_bin" "$version")
gw_cur=$(build latchkey-gateway "$gateway_bin" "$version")
# The next version: the current package with a changed template and default policy (what a
# release that changes a conffile ships).
repack=$work/repack
dpkg-deb -R "$deb_cur" "$repack"
echo "# packaged in $next" >> "$repack/etc/latchkey/latchkey.toml"
echo "# packaged in $next" >> "$repack/etc/latchkey/policies/default.toml"
sed -i "s/^Version: .*/Version: $next/" "$repack/DEBIAN/control"
(cd "$repack" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z | xargs -0 md5sum) > "$repack/DEBIAN/md5sums"
deb_next=$work/debs/latchkey_${next}_$(dpkg --print-architecture).deb
dpkg-deb --root-owner-group --build "$repack" "$deb_next" >/dev/null
rm -rf "$repack"
for deb in "$deb_prev" "$gw_prev" "$deb_cur" "$gw_cur" "$deb_next"; do
  printf '%-60s %6s KiB  Depends: %s\n' "${deb##*/}" "$(( $(stat -c %s "$deb") / 1024 ))" "$(dpkg-deb -f "$deb" Depends)"
done

# Mode and owner of every file the packages installed (directories of their own included), and
# of the state folder. Columns: path, mode, owner:group.
expected=$work/expected
cat > "$expected" <<'EOF'
/usr/bin/latchkey                               755 root:root
/lib/systemd/system/latchkey.service            644 root:root
/etc/latchkey                                   750 root:latchkey
/etc/latchkey/latchkey.toml                     640 root:latchkey
/etc/latchkey/policies                          750 root:latchkey
/etc/latchkey/policies/default.toml             640 root:latchkey
/usr/share/doc/latchkey                         755 root:root
/usr/share/doc/latchkey/README.md               644 root:root
/usr/share/doc/latchkey/policies.md             644 root:root
/usr/share/doc/latchkey/changelog.gz            644 root:root
/usr/share/doc/latchkey/copyright               644 root:root
/var/lib/latchkey                               700 latchkey:latchkey
/usr/bin/latchkey-gateway                       755 root:root
/lib/systemd/system/latchkey-gateway.service    644 root:root
/etc/latchkey-gateway                           750 root:latchkey-gateway
/etc/latchkey-gateway/gateway.toml              640 root:latchkey-gateway
/usr/share/doc/latchkey-gateway                 755 root:root
/usr/share/doc/latchkey-gateway/README.md       644 root:root
/usr/share/doc/latchkey-gateway/changelog.gz    644 root:root
/usr/share/doc/latchkey-gateway/copyright       644 root:root
EOF
check_modes() { # [print]
  local path want_mode want_owner mode owner bad=0
  # Every installed file and every directory of the packages' own must be in the table.
  while read -r path; do
    [ -n "$path" ] || continue # dpkg -L separates packages with an empty line
    if [ -d "$path" ] && [[ $path != *latchkey* ]]; then continue; fi # /usr/bin and the like
    awk -v p="$path" '$1 == p {found = 1} END {exit !found}' "$expected" ||
      fail "$path is installed but not in the expected modes of tests/packages/check.sh"
  done < <(dpkg -L "${packages[@]}" | grep -v '^/\.$')
  while read -r path want_mode want_owner; do
    mode=$(stat -c %a "$path") owner=$(stat -c %U:%G "$path")
    if [ "$mode" != "$want_mode" ] || [ "$owner" != "$want_owner" ]; then
      printf '%-48s %4s %-24s WRONG, want %s %s\n' "$path" "$mode" "$owner" "$want_mode" "$want_owner"
      bad=1
    elif [ "${1:-}" = print ]; then
      printf '%-48s %4s %-24s ok\n' "$path" "$mode" "$owner"
    fi
  done < "$expected"
  ((bad == 0)) || fail "wrong modes or owners (above)"
}
conffile_line() { sed -n "s/^ *\\(\\/etc\\/[^ ]*\\) .*/\\1/p" < <(dpkg-query -W -f='${Conffiles}\n' "$1"); }

step "3. install the previous version ($prev)"
dpkg -i "$deb_prev" "$gw_prev" < /dev/null > "$work/install.log" 2>&1 || { cat "$work/install.log"; fail "dpkg -i $prev"; }
sed -n '/is installed; the service is not enabled yet/,/systemctl enable/p' "$work/install.log"
grep -qF 'latchkey check --config /etc/latchkey/latchkey.toml' "$work/install.log" || fail "no latchkey check hint"
grep -qF 'systemctl enable --now latchkey-gateway' "$work/install.log" || fail "no gateway hint"
for p in "${packages[@]}"; do [ "$(status_of "$p")" = installed ] || fail "$p: $(status_of "$p")"; done
check_modes print
for u in "${users[@]}"; do
  IFS=: read -r _ _ uid gid _ home shell < <(getent passwd "$u")
  [ "$uid" -lt 1000 ] || fail "$u is not a system user (uid $uid)"
  [ "$shell" = /usr/sbin/nologin ] || fail "$u has shell $shell"
  [ "$(getent group "$gid" | cut -d: -f1)" = "$u" ] || fail "$u's group is not $u"
  pw=$(getent shadow "$u" | cut -d: -f2)
  [[ $pw == '*' || $pw == '!'* ]] || fail "$u has a password"
  printf 'user %-17s uid %-4s home %-18s shell %s, no password\n' "$u" "$uid" "$home" "$shell"
done
[ "$(getent passwd latchkey | cut -d: -f6)" = /var/lib/latchkey ] || fail "latchkey's home is not /var/lib/latchkey"
[ "$(conffile_line latchkey | sort | tr '\n' ' ')" = "/etc/latchkey/latchkey.toml /etc/latchkey/policies/default.toml " ] ||
  fail "latchkey's conffiles: $(conffile_line latchkey)"
[ "$(conffile_line latchkey-gateway)" = /etc/latchkey-gateway/gateway.toml ] || fail "latchkey-gateway's conffiles: $(conffile_line latchkey-gateway)"
echo "conffiles: $(conffile_line latchkey | tr '\n' ' ')$(conffile_line latchkey-gateway)"
for unit in latchkey.service latchkey-gateway.service; do
  # Installed, not enabled (the configuration is a template) and not running.
  [ -z "$(find /etc/systemd/system -name "$unit")" ] || fail "$unit is enabled or masked after install"
  out=$(systemd-analyze verify "/lib/systemd/system/$unit" 2>&1) || fail "systemd-analyze verify $unit: $out"
  [ -z "$out" ] || fail "systemd-analyze verify $unit warns: $out"
  # Exposure 0.0 (safe) to 10.0 (unsafe); above 2.5 the hardening got weaker.
  out=$(systemd-analyze security --offline=yes --threshold=25 --no-pager "/lib/systemd/system/$unit" 2>&1) ||
    { echo "$out"; fail "$unit: exposure above 2.5"; }
  echo "systemd-analyze verify $unit: no output; $(grep -o 'Overall exposure level.*' <<<"$out")"
done
[ "$(/usr/bin/latchkey --version)" = "latchkey $version" ] || fail "latchkey --version: $(/usr/bin/latchkey --version)"
[ "$(/usr/bin/latchkey-gateway --version)" = "latchkey-gateway $version" ] || fail "latchkey-gateway --version"
/usr/bin/latchkey check --help >/dev/null
echo "installed programs run: $(/usr/bin/latchkey --version), $(/usr/bin/latchkey-gateway --version)"

step "4. start the services as their units would"
# The unit's user, group, umask and environment, its ExecStart; LATCHKEY__SERVER__LISTEN moves
# the portal off 8080 (a demo may run there). What systemd's sandbox adds is judged above.
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
as_unit() { # unit log [VAR=value...]: starts ExecStart in the background, sets $running
  local unit=/lib/systemd/system/$1 log=$2 user group umask exec
  shift 2
  user=$(sed -n 's/^User=//p' "$unit") group=$(sed -n 's/^Group=//p' "$unit")
  umask=$(sed -n 's/^UMask=//p' "$unit") exec=$(sed -n 's/^ExecStart=//p' "$unit")
  mapfile -t envs < <(sed -n 's/^Environment=//p' "$unit")
  # shellcheck disable=SC2086,SC2016 # ExecStart split into words as systemd does (it has no
  # quotes); the sh -c script's "$0" and "$@" are its own
  setpriv --reuid="$user" --regid="$group" --init-groups \
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "${envs[@]}" "$@" sh -c 'umask "$0" && exec "$@"' "$umask" $exec \
    > "$log" 2>&1 &
  running=$!
}
stop() { # SIGTERM, as systemd sends it; a clean exit
  local rc=0
  kill -TERM "$running"
  wait "$running" || rc=$?
  running=
  ((rc == 0 || rc == 143)) || fail "exit code $rc after SIGTERM"
}
start_portal() { # log: until /healthz answers, then stops it
  local port i
  port=$(free_port)
  as_unit latchkey.service "$1" "LATCHKEY__SERVER__LISTEN=127.0.0.1:$port"
  for i in $(seq 100); do
    curl -fsS -m 2 "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
    kill -0 "$running" 2>/dev/null || { cat "$1"; fail "the portal stopped"; }
    ((i < 100)) || { cat "$1"; fail "no /healthz after 20 s"; }
    sleep 0.2
  done
  stop
  echo "portal answered /healthz on 127.0.0.1:$port as $(sed -n 's/^User=//p' /lib/systemd/system/latchkey.service)"
}
migrations() { # the store's applied migrations, read from a copy (root never opens the live store)
  rm -rf "$work/db" && mkdir "$work/db" && cp /var/lib/latchkey/latchkey.db* "$work/db/"
  python3 -c '
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
print(db.execute("SELECT count(*) FROM _sqlx_migrations WHERE success").fetchone()[0])' "$work/db/latchkey.db"
}
# The administrator's part: the client secret, as the hint says.
printf 'not-a-real-secret\n' | install -m 0640 -o root -g latchkey /dev/stdin /etc/latchkey/client-secret
start_portal "$work/portal1.log"
applied=$(grep -c 'applied SQLite migration' "$work/portal1.log" || true)
((applied > 0)) || { cat "$work/portal1.log"; fail "the portal applied no migration at its first start"; }
[ "$(migrations)" = "$applied" ] || fail "the database records $(migrations) migrations, the log $applied"
echo "first start: $applied migrations applied to /var/lib/latchkey/latchkey.db"
for f in /var/lib/latchkey/latchkey.db /var/lib/latchkey/latchkey.key; do
  [ "$(stat -c '%a %U:%G' "$f")" = "600 latchkey:latchkey" ] || fail "$f: $(stat -c '%a %U:%G' "$f")"
  printf '%-48s %4s %-24s ok\n' "$f" 600 latchkey:latchkey
done
! find /var/lib/latchkey -mindepth 1 ! -user latchkey | grep . || fail "files in /var/lib/latchkey not owned by latchkey"
# The gateway: the administrator fills in the template (its keys uncommented, no CA files, a
# loopback portal where nothing listens) and adds the two secrets.
closed=$(free_port)
sed -E 's/^# ([a-z_]+ = |\[)/\1/; /^ca_file = /d' /etc/latchkey-gateway/gateway.toml |
  sed "s#^url = \"https://reset.contoso.com\"#url = \"http://127.0.0.1:$closed\"#" > "$work/gateway.toml"
grep -q "^url = \"http://127.0.0.1:$closed\"" "$work/gateway.toml" || fail "the gateway template has no [portal] url line"
install -m 0640 -o root -g latchkey-gateway "$work/gateway.toml" /etc/latchkey-gateway/gateway.toml
printf 'not-a-real-password\n' | install -m 0640 -o root -g latchkey-gateway /dev/stdin /etc/latchkey-gateway/ad.pw
printf 'lkgw_test.not-a-real-secret\n' | install -m 0640 -o root -g latchkey-gateway /dev/stdin /etc/latchkey-gateway/gateway.credential
as_unit latchkey-gateway.service "$work/gateway.log"
for i in $(seq 50); do
  grep -q 'gateway agent started' "$work/gateway.log" && break
  kill -0 "$running" 2>/dev/null || { cat "$work/gateway.log"; fail "the gateway stopped"; }
  ((i < 50)) || { cat "$work/gateway.log"; fail "the gateway did not start in 10 s"; }
  sleep 0.2
done
stop
echo "gateway ran as latchkey-gateway with the filled-in template (portal unreachable, as intended)"

step "5. the administrator changes the configuration; upgrade to $version (plain dpkg -i)"
sed -i 's/^listen = .*/listen = "127.0.0.1:8099"            # changed by the administrator/' /etc/latchkey/latchkey.toml
grep -q '127.0.0.1:8099' /etc/latchkey/latchkey.toml || fail "could not change the configuration"
cp -p /etc/latchkey/latchkey.toml "$work/admin-latchkey.toml"
cp -p /etc/latchkey-gateway/gateway.toml "$work/admin-gateway.toml"
uid_before=$(id -u latchkey)
dpkg -i "$deb_cur" "$gw_cur" < /dev/null > "$work/upgrade.log" 2>&1 || { cat "$work/upgrade.log"; fail "dpkg -i $version"; }
! grep -E 'the service is not enabled yet|Configuration file' "$work/upgrade.log" || fail "an upgrade printed the install hint or a conffile question"
for p in "${packages[@]}"; do [ "$(dpkg-query -W -f='${Version} ${db:Status-Status}' "$p")" = "$version installed" ] || fail "$p not upgraded"; done
cmp /etc/latchkey/latchkey.toml "$work/admin-latchkey.toml" || fail "the upgrade changed /etc/latchkey/latchkey.toml"
cmp /etc/latchkey-gateway/gateway.toml "$work/admin-gateway.toml" || fail "the upgrade changed gateway.toml"
! ls /etc/latchkey*/*.dpkg-* /etc/latchkey/policies/*.dpkg-* 2>/dev/null || fail "the upgrade left .dpkg-* files"
[ "$(id -u latchkey)" = "$uid_before" ] || fail "the upgrade recreated the user"
check_modes
echo "both changed configurations kept, no question, no .dpkg-* file; modes and owners as above"
start_portal "$work/portal2.log"
! grep 'applied SQLite migration' "$work/portal2.log" || fail "migrations applied again"
[ "$(migrations)" = "$applied" ] || fail "the database lost its migrations"
echo "second start on the same database: nothing to migrate"

step "6. upgrade to $next, whose packaged template changed (dpkg -i --force-confold)"
dpkg -i --force-confold "$deb_next" < /dev/null > "$work/next.log" 2>&1 || { cat "$work/next.log"; fail "dpkg -i $next"; }
cmp /etc/latchkey/latchkey.toml "$work/admin-latchkey.toml" || fail "--force-confold replaced the administrator's file"
grep -qx "# packaged in $next" /etc/latchkey/latchkey.toml.dpkg-dist || fail "no latchkey.toml.dpkg-dist with the new template"
grep -qx "# packaged in $next" /etc/latchkey/policies/default.toml || fail "the unchanged default policy was not updated"
[ "$(stat -c '%a %U:%G' /etc/latchkey/policies/default.toml)" = "640 root:latchkey" ] || fail "updated default.toml: wrong owner"
grep -E 'Configuration file|dpkg-dist' "$work/next.log" | sed 's/^/  dpkg: /' || true
echo "the administrator's latchkey.toml kept, the new template is latchkey.toml.dpkg-dist; the untouched default.toml was updated"

step "7. remove (configuration stays), then purge (nothing stays)"
# The administrator enabled the services (without starting them): purge must undo that too.
systemctl enable latchkey.service latchkey-gateway.service > /dev/null 2>&1 || fail "systemctl enable"
[ -L /etc/systemd/system/multi-user.target.wants/latchkey.service ] || fail "systemctl enable made no symlink"
dpkg -r "${packages[@]}" < /dev/null > "$work/remove.log" 2>&1 || { cat "$work/remove.log"; fail "dpkg -r"; }
for p in "${packages[@]}"; do [ "$(status_of "$p")" = config-files ] || fail "$p after remove: $(status_of "$p")"; done
for path in /usr/bin/latchkey /usr/bin/latchkey-gateway /lib/systemd/system/latchkey.service /lib/systemd/system/latchkey-gateway.service; do
  [ ! -e "$path" ] || fail "$path is still there after remove"
done
cmp /etc/latchkey/latchkey.toml "$work/admin-latchkey.toml" || fail "remove changed the configuration"
for path in /var/lib/latchkey/latchkey.db /var/lib/latchkey/latchkey.key /etc/latchkey/client-secret /etc/latchkey-gateway/gateway.credential; do
  [ -f "$path" ] || fail "remove deleted $path"
done
for u in "${users[@]}"; do getent passwd "$u" >/dev/null || fail "remove deleted user $u"; done
echo "removed: programs and units gone; configuration, secrets, database and users kept"
dpkg -P "${packages[@]}" < /dev/null > "$work/purge.log" 2>&1 || { cat "$work/purge.log"; fail "dpkg -P"; }
for p in "${packages[@]}"; do ! installed "$p" || fail "$p after purge: $(status_of "$p")"; done
for path in "${owned_paths[@]}" /usr/share/doc/latchkey /usr/share/doc/latchkey-gateway; do
  [ ! -e "$path" ] || fail "$path is still there after purge"
done
for u in "${users[@]}"; do
  ! getent passwd "$u" >/dev/null || fail "user $u is still there after purge"
  ! getent group "$u" >/dev/null || fail "group $u is still there after purge"
done
left=$(find /etc/systemd/system /var/lib/systemd/deb-systemd-helper-enabled /var/lib/systemd/deb-systemd-helper-masked \
  -name '*latchkey*' 2>/dev/null || true)
[ -z "$left" ] || fail "left after purge: $left"
echo "purged: no package, file, folder, user, group or unit symlink left"

echo
echo "packages OK in $(($(date +%s) - t0)) s"
