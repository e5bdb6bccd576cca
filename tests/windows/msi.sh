#!/usr/bin/env bash
# Builds the gateway MSI and tests it: the MSI's tables (msiinfo), then install, service,
# upgrade, downgrade refusal, same-version rebuild and uninstall under Wine, in a fresh
# WINEPREFIX each run.
#
#   bash tests/windows/msi.sh EXE [VERSION]       (tests/run: EXE only)
#     EXE      latchkey-gateway.exe (x86_64-pc-windows-gnu), or any small PE exe as a stand-in
#              (then the service step is skipped: a stand-in is no service)
#     VERSION  MAJOR.MINOR.PATCH, default 0.1.0; the upgrade is tested with PATCH+1
#
# Needs: wixl + msitools, wine64 (Wine 8), x86_64-w64-mingw32-gcc (for the test-only
# bcryptprimitives.dll shim and a helper that keeps the Wine session alive).
# Env: KEEP=1 keeps the scratch dir (always kept on failure); SERVICE_TEST=0 skips the
# service step; LATCHKEY_TEST_WINE (tests/windows/build.sh env) or WINE, and WINESERVER,
# override the binaries.
# Exit 0 when every check passed; 1 with "FAIL: ..." on the first mismatch.
set -euo pipefail

started=$(date +%s)
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
build="$repo/installer/windows/build-msi.sh"

[ $# -ge 1 ] && [ $# -le 2 ] || { echo "usage: tests/windows/msi.sh EXE [VERSION]" >&2; exit 2; }
exe=$(realpath "$1") version=${2:-0.1.0}
[ -f "$exe" ] || { echo "no such file: $exe" >&2; exit 2; }
[[ $version =~ ^([0-9]+\.[0-9]+)\.([0-9]+)$ ]] || { echo "VERSION must be MAJOR.MINOR.PATCH" >&2; exit 2; }
next="${BASH_REMATCH[1]}.$((BASH_REMATCH[2] + 1))"

WINE=${WINE:-${LATCHKEY_TEST_WINE:-$(command -v wine64 || command -v wine || echo /usr/lib/wine/wine64)}}
WINESERVER=${WINESERVER:-$(dirname "$WINE")/wineserver}
[ -x "$WINESERVER" ] || WINESERVER=$(command -v wineserver || echo /usr/lib/wine/wineserver)
for tool in wixl msiinfo msibuild x86_64-w64-mingw32-gcc "$WINE" "$WINESERVER"; do
    command -v "$tool" >/dev/null || { echo "missing tool: $tool" >&2; exit 2; }
done

tmp=$(mktemp -d /tmp/latchkey-msi-test.XXXXXX)
export WINEPREFIX="$tmp/prefix" WINEDLLOVERRIDES="mscoree,mshtml=" WINEDEBUG=-all
unset DISPLAY WAYLAND_DISPLAY
failed=1
cleanup() {
    "$WINESERVER" -k >/dev/null 2>&1 || true
    if [ "$failed" = 0 ] && [ "${KEEP:-0}" != 1 ]; then rm -rf "$tmp"; else echo "scratch kept: $tmp"; fi
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok   $*"; }
step() { echo "== $* ($(($(date +%s) - started)) s)"; }

# ---------------------------------------------------------------------------------------------
step "build: $version and $next"
# The upgrade must be seen to replace the exe, so its exe differs: the same PE with a few bytes
# appended (an overlay, ignored by the loader).
cp "$exe" "$tmp/gw-$version.exe"
cp "$exe" "$tmp/gw-$next.exe"
printf '\0latchkey msi test %s\0' "$next" >> "$tmp/gw-$next.exe"
"$build" "$tmp/gw-$version.exe" "$version" "$tmp/old.msi" >/dev/null
"$build" "$tmp/gw-$next.exe" "$next" "$tmp/new.msi" >/dev/null
"$build" "$tmp/gw-$next.exe" "$next" "$tmp/new-rebuilt.msi" >/dev/null   # new ProductCode
ok "three MSIs built"

# ---------------------------------------------------------------------------------------------
step "tables"
T=$'\t'
rows() { msiinfo export "$1" "$2" | tail -n +4 | tr -d '\r'; }
has_row() { # MSI TABLE ROW (exact, tab-separated)
    rows "$1" "$2" | grep -qxF -- "$3" || fail "$2 lacks the row: ${3//$T/ | }"
}
m="$tmp/old.msi"
upgrade_code='{26EF45DC-76AB-4762-BBB6-E4BA95CBDFD2}'
evkey='SYSTEM\CurrentControlSet\Services\EventLog\Application\Latchkey Gateway'

has_row "$m" ServiceInstall "SvcGateway${T}LatchkeyGateway${T}Latchkey Gateway${T}16${T}2${T}32769${T}${T}${T}NT SERVICE\\LatchkeyGateway${T}${T}run --service --config \"[CONFIGDIR]gateway.toml\"${T}CmpGateway${T}Takes account unlock (and, where allowed, password reset) jobs from the Latchkey portal and carries them out in Active Directory."
# 162 = stop on install (0x2) + stop on uninstall (0x20) + delete on uninstall (0x80); no start.
has_row "$m" ServiceControl "SvcGatewayControl${T}LatchkeyGateway${T}162${T}${T}1${T}CmpGateway"
has_row "$m" MsiServiceConfig "SvcGatewayDelayed${T}LatchkeyGateway${T}5${T}3${T}1${T}CmpGateway"
has_row "$m" CustomAction "LkgwRecovery${T}3122${T}LKGW_SC${T}failure LatchkeyGateway reset= 86400 actions= restart/60000/restart/60000//0${T}"
has_row "$m" CustomAction "LkgwScPath${T}51${T}LKGW_SC${T}[System64Folder]sc.exe${T}"
has_row "$m" Component "CmpGateway${T}{CCDB55A9-12AD-483E-88E2-8E5517EF9027}${T}INSTALLDIR${T}256${T}${T}GatewayExe"
# 400 = 64-bit (256) + NeverOverwrite (128) + Permanent (16).
has_row "$m" Component "CmpConfig${T}{98C52AD3-6D9E-46D7-9FFD-DE6DA137CC33}${T}CONFIGDIR${T}400${T}${T}GatewayToml"
has_row "$m" Directory "INSTALLDIR${T}ProgramFiles64Folder${T}Latchkey"
has_row "$m" Directory "CONFIGDIR${T}CommonAppDataFolder${T}Latchkey"
has_row "$m" CreateFolder "CONFIGDIR${T}CmpConfig"
size=$(stat -c %s "$tmp/gw-$version.exe")
rows "$m" File | grep -qxF "GatewayExe${T}CmpGateway${T}latchkey-gateway.exe${T}${size}${T}${T}${T}512${T}1" \
    || fail "File row of latchkey-gateway.exe ($size bytes): $(rows "$m" File | grep GatewayExe)"
rows "$m" File | grep -q "^GatewayToml${T}CmpConfig${T}gateway.toml${T}" || fail "File row of gateway.toml"
rows "$m" Registry | grep -qxE "reg[0-9A-F]+${T}2${T}${evkey//\\/\\\\}${T}EventMessageFile${T}\[#GatewayExe\]${T}CmpGateway" \
    || fail "Registry: EventMessageFile = [#GatewayExe] under HKLM\\$evkey"
rows "$m" Registry | grep -qxE "reg[0-9A-F]+${T}2${T}${evkey//\\/\\\\}${T}TypesSupported${T}#7${T}CmpGateway" \
    || fail "Registry: TypesSupported = 7 under HKLM\\$evkey"
has_row "$m" MsiLockPermissionsEx "LockConfigDir${T}CONFIGDIR${T}CreateFolder${T}D:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;0x1200a9;;;S-1-5-80-1095500682-540811030-1657681941-623974913-1865622665)${T}"
has_row "$m" Property "UpgradeCode${T}$upgrade_code"
has_row "$m" Property "ProductVersion${T}$version"
has_row "$m" Property "ALLUSERS${T}1"
has_row "$m" Upgrade "$upgrade_code${T}${T}$version${T}${T}1${T}${T}WIX_UPGRADE_DETECTED"
has_row "$m" Upgrade "$upgrade_code${T}$version${T}$version${T}${T}769${T}${T}WIX_UPGRADE_DETECTED"
has_row "$m" Upgrade "$upgrade_code${T}$version${T}${T}${T}2${T}${T}WIX_DOWNGRADE_DETECTED"
has_row "$m" LaunchCondition "NOT WIX_DOWNGRADE_DETECTED${T}A newer version of Latchkey Gateway is already installed."
rows "$m" InstallExecuteSequence | awk -F'\t' '{ s[$1] = $3 } END {
    exit !(s["InstallValidate"] < s["RemoveExistingProducts"] && s["RemoveExistingProducts"] < s["InstallInitialize"] &&
           s["InstallServices"] < s["LkgwRecovery"] && s["LkgwRecovery"] < s["MsiConfigureServices"] &&
           s["MsiConfigureServices"] < s["StartServices"] && s["StartServices"] < s["InstallFinalize"]) }' \
    || fail "InstallExecuteSequence order: $(rows "$m" InstallExecuteSequence | tr '\n\t' '; ')"
msiinfo suminfo "$m" | grep -qx 'Template: x64;1033' || fail "summary Template is not x64;1033"
msiinfo suminfo "$m" | grep -q '^Version: 500 ' || fail "summary Version (InstallerVersion) is not 500"
[ "$(rows "$tmp/new.msi" Property | grep "^ProductCode$T")" != "$(rows "$tmp/new-rebuilt.msi" Property | grep "^ProductCode$T")" ] \
    || fail "two builds share a ProductCode"
ok "ServiceInstall (virtual account), ServiceControl, MsiServiceConfig, recovery action, files, components, registry, ACL, upgrade code, sequence"

# ---------------------------------------------------------------------------------------------
step "Wine prefix"
winepath_of() { echo "Z:${1//\//\\}"; }
w() { "$WINE" "$@" 2>>"$tmp/wine-stderr.log" | tr -d '\r'; return "${PIPESTATUS[0]}"; }
msiexec() { # ACTION MSI LOGNAME
    local rc=0
    "$WINE" msiexec "$1" "$(winepath_of "$2")" /qn /l*v "$(winepath_of "$tmp/$3.log")" \
        >>"$tmp/wine-stderr.log" 2>&1 || rc=$?
    return "$rc"
}
"$WINE" wineboot -i >>"$tmp/wine-stderr.log" 2>&1 || fail "wineboot -i"
"$WINESERVER" -w
c="$WINEPREFIX/drive_c"
pf="$c/Program Files/Latchkey"
pd="$c/ProgramData/Latchkey"
svckey='HKLM\System\CurrentControlSet\Services\LatchkeyGateway'

# A user process for the whole Wine phase: Wine ends services.exe (and with it every service
# and its state) as soon as no user process is left. WINEDEBUG here reaches services.exe and the
# services it starts: +eventlog makes Wine's ReportEventW (a stub) print each event.
cat >"$tmp/keepalive.c" <<'EOF'
#include <windows.h>
int main(void) { Sleep(INFINITE); return 0; }
EOF
x86_64-w64-mingw32-gcc -O2 -o "$tmp/keepalive.exe" "$tmp/keepalive.c"
WINEDEBUG=-all,+eventlog "$WINE" "$tmp/keepalive.exe" >"$tmp/services-trace.log" 2>&1 &
sleep 2
ok "prefix $WINEPREFIX"

reg_value() { # KEY NAME -> "TYPE VALUE"
    { w reg query "$1" /v "$2" 2>/dev/null || true; } | awk -v n="$2" '$1 == n { $1 = ""; sub(/^ +/, ""); print }'
}
expect_reg() { # KEY NAME "TYPE VALUE"
    local got; got=$(reg_value "$1" "$2")
    [ "$got" = "$3" ] || fail "registry $1 $2: expected '$3', got '$got'"
}
uninstall_entries() {
    { w reg query 'HKLM\Software\Microsoft\Windows\CurrentVersion\Uninstall' /s 2>/dev/null || true; } \
        | awk '/^HKEY/ { k = $0 } /DisplayName +REG_SZ +Latchkey Gateway$/ { print k }'
}
installed_version() {
    local k; k=$(uninstall_entries)
    [ "$(printf '%s\n' "$k" | grep -c .)" = 1 ] || fail "expected one installed Latchkey Gateway, found: ${k:-none}"
    reg_value "$k" DisplayVersion | awk '{ print $2 }'
}
svc_state() { { w sc query LatchkeyGateway || true; } | awk '/STATE/ { print $4 } /WIN32_EXIT_CODE/ { print $3 }' | paste -sd' '; }
wait_state() { # "STATE EXIT" within 30 s
    local i s
    for i in $(seq 60); do s=$(svc_state); [ "$s" = "$1" ] && return 0; sleep 0.5; done
    fail "service state: expected '$1', got '$s'"
}

# ---------------------------------------------------------------------------------------------
step "install $version"
msiexec /i "$tmp/old.msi" install || fail "msiexec /i $version: exit $? (log $tmp/install.log)"
cmp -s "$pf/latchkey-gateway.exe" "$tmp/gw-$version.exe" || fail "C:\\Program Files\\Latchkey\\latchkey-gateway.exe missing or not the built exe"
cmp -s "$pd/gateway.toml" "$repo/installer/windows/gateway.toml" || fail "C:\\ProgramData\\Latchkey\\gateway.toml missing or not the template"
[ "$(installed_version)" = "$version" ] || fail "installed version is not $version"
expect_reg "$svckey" ImagePath 'REG_SZ C:\Program Files\Latchkey\latchkey-gateway.exe run --service --config "C:\ProgramData\Latchkey\gateway.toml"'
expect_reg "$svckey" ObjectName 'REG_SZ NT SERVICE\LatchkeyGateway'
expect_reg "$svckey" DisplayName 'REG_SZ Latchkey Gateway'
expect_reg "$svckey" Start 'REG_DWORD 0x2'
expect_reg "$svckey" ErrorControl 'REG_DWORD 0x1'
expect_reg "$svckey" Type 'REG_DWORD 0x10'
expect_reg "HKLM\\$evkey" EventMessageFile 'REG_SZ C:\Program Files\Latchkey\latchkey-gateway.exe'
expect_reg "HKLM\\$evkey" TypesSupported 'REG_DWORD 0x7'
grep -q 'HANDLE_CustomType50\|LkgwRecovery' "$tmp/install.log" || fail "the recovery custom action did not run"
grep -q 'Action ended .*LkgwRecovery. Return value 1' "$tmp/install.log" || fail "the recovery custom action failed (see $tmp/install.log)"
[ "$(svc_state)" = "STOPPED 1077" ] || fail "the installer started the service: $(svc_state)"
ok "files, service (virtual account, auto start, not started), event source, recovery action ran"

# ---------------------------------------------------------------------------------------------
real=0
if [ "${SERVICE_TEST:-1}" != 0 ]; then
    # Test-only: Wine 8 has no bcryptprimitives.dll (Rust std's ProcessPrng). Into system32, so
    # that the installed exe finds it without anything extra in C:\Program Files\Latchkey.
    x86_64-w64-mingw32-gcc -shared -O2 -o "$c/windows/system32/bcryptprimitives.dll" \
        "$here/bcryptprimitives.c" -ladvapi32
    if w "$pf/latchkey-gateway.exe" --version 2>/dev/null | grep -Eq '^latchkey-gateway [0-9]+\.'; then real=1; fi
fi
if [ "$real" = 1 ]; then
    step "service: template configuration"
    w sc start LatchkeyGateway >/dev/null || fail "sc start LatchkeyGateway"
    wait_state "STOPPED 1"
    grep -qF 'err:eventlog:ReportEventW L"latchkey-gateway service stopped: C:\\ProgramData\\Latchkey\\gateway.toml: ad.url is required' \
        "$tmp/services-trace.log" || fail "no Error event naming the missing ad.url (trace: $tmp/services-trace.log)"
    ok "the template stops the service with exit code 1 and an Error event 'ad.url is required'"

    step "service: running, then stopped by the upgrade"
    # A complete configuration whose portal is a closed loopback port: the agent starts and
    # retries, so the service stays running.
    cat >"$pd/gateway.toml" <<'EOF'
# operator's configuration (msi.sh)
[ad]
url = "ldaps://dc.invalid"
bind_dn = "svc@lab.invalid"
password_file = "ad.pw"
[portal]
url = "http://127.0.0.1:9"
credential_file = "gateway.credential"
EOF
    echo pw >"$pd/ad.pw"
    echo lkgw_test.secret >"$pd/gateway.credential"
    w sc start LatchkeyGateway >/dev/null || fail "sc start LatchkeyGateway (configured)"
    wait_state "RUNNING 0"
    for i in $(seq 40); do grep -q 'cannot reach the portal' "$tmp/services-trace.log" && break; sleep 0.5; done
    grep -qF 'trace:eventlog:ReportEventW L"gateway agent started portal=http://127.0.0.1:9 can=unlock"' "$tmp/services-trace.log" \
        || fail "no Information event 'gateway agent started'"
    grep -q 'warn:eventlog:ReportEventW L"cannot reach the portal' "$tmp/services-trace.log" \
        || fail "no Warning event 'cannot reach the portal'"
    ok "running; Information and Warning events written"
else
    step "service: skipped ($( [ "${SERVICE_TEST:-1}" = 0 ] && echo SERVICE_TEST=0 || echo 'not a latchkey-gateway exe'))"
    printf '# operator edit (msi.sh)\n' >>"$pd/gateway.toml"
fi
cp "$pd/gateway.toml" "$tmp/operator.toml"

# ---------------------------------------------------------------------------------------------
step "upgrade to $next"
msiexec /i "$tmp/new.msi" upgrade || fail "msiexec /i $next: exit $? (log $tmp/upgrade.log)"
cmp -s "$pf/latchkey-gateway.exe" "$tmp/gw-$next.exe" || fail "the upgrade did not replace the exe"
cmp -s "$pd/gateway.toml" "$tmp/operator.toml" || fail "the upgrade changed the operator's gateway.toml"
[ "$(installed_version)" = "$next" ] || fail "installed version is not $next after the upgrade"
expect_reg "$svckey" ObjectName 'REG_SZ NT SERVICE\LatchkeyGateway'
expect_reg "HKLM\\$evkey" EventMessageFile 'REG_SZ C:\Program Files\Latchkey\latchkey-gateway.exe'
if [ "$real" = 1 ]; then
    # StopServices stopped it (the agent's own "stopped" event: a clean stop, not a kill); the
    # service was then deleted and created anew, so its state is the new one's (STOPPED 1077).
    grep -qF 'trace:eventlog:ReportEventW L"gateway agent stopped"' "$tmp/services-trace.log" \
        || fail "the running service was not stopped cleanly by the upgrade"
    [ "$(svc_state | cut -d' ' -f1)" = STOPPED ] || fail "after the upgrade the service is $(svc_state), not stopped"
    ok "exe replaced, configuration kept, one product $next, running service stopped cleanly and left stopped"
else
    ok "exe replaced, configuration kept, one product $next"
fi

step "downgrade to $version is refused"
rc=0; msiexec /i "$tmp/old.msi" downgrade || rc=$?
[ "$rc" != 0 ] || fail "installing $version over $next succeeded"
grep -q 'LaunchConditions. Return value 0\|newer version' "$tmp/downgrade.log" || fail "the downgrade failed, but not at the launch condition"
cmp -s "$pf/latchkey-gateway.exe" "$tmp/gw-$next.exe" && [ "$(installed_version)" = "$next" ] \
    || fail "the refused downgrade changed the installation"
ok "refused (msiexec exit $rc), $next untouched"

step "same-version rebuild replaces, not duplicates"
msiexec /i "$tmp/new-rebuilt.msi" rebuilt || fail "msiexec /i rebuilt $next: exit $?"
[ "$(installed_version)" = "$next" ] || fail "after the rebuild"
rebuilt_code=$(rows "$tmp/new-rebuilt.msi" Property | awk -F'\t' '$1 == "ProductCode" { print $2 }')
uninstall_entries | grep -qF "$rebuilt_code" || fail "the rebuilt MSI's ProductCode is not the installed one"
ok "one product, the rebuilt one"

# ---------------------------------------------------------------------------------------------
step "uninstall"
msiexec /x "$tmp/new-rebuilt.msi" uninstall || fail "msiexec /x: exit $? (log $tmp/uninstall.log)"
[ ! -e "$pf/latchkey-gateway.exe" ] || fail "the exe is still there after uninstall"
[ ! -d "$pf" ] || fail "C:\\Program Files\\Latchkey is still there after uninstall"
cmp -s "$pd/gateway.toml" "$tmp/operator.toml" || fail "uninstall removed or changed gateway.toml"
w reg query "$svckey" >/dev/null 2>&1 && fail "the service is still registered after uninstall"
w reg query "HKLM\\$evkey" >/dev/null 2>&1 && fail "the event source is still registered after uninstall"
[ -z "$(uninstall_entries)" ] || fail "still listed as installed: $(uninstall_entries)"
ok "exe, service, event source and product gone; configuration kept"

failed=0
echo "PASS: MSI $version -> $next, $(($(date +%s) - started)) s$( [ "$real" = 1 ] || echo ' (service step skipped)')"
