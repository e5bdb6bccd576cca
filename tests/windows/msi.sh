#!/usr/bin/env bash
# The gateway MSI, built and exercised as an administrator would use it (tests/run runs this):
#   bash tests/windows/msi.sh EXE
# 1. builds it (installer/windows/build-msi.sh) as 0.1.0 and 0.1.1 from the same exe;
# 2. checks its tables (msiinfo export): the service and its virtual account, delayed start,
#    recovery, the files, the event-log source, the config that is never overwritten or removed,
#    the config folder's ACL, the upgrade code;
# 3. under Wine, in a fresh prefix: installs 0.1.0 and checks where the files, the service and
#    the event source land; starts the service on the template configuration (it stops at once
#    with exit code 1 and says why in the event log) and on a working one (it runs until stopped);
#    upgrades to 0.1.1 (the operator's configuration kept, one product installed); uninstalls
#    (exe and service gone, configuration kept).
# Any mismatch fails with a message. Needs wixl, msibuild, msiinfo and Wine (tests/windows/build.sh
# install).
set -euo pipefail
cd "$(dirname "$0")/../.."

exe=${1:?usage: tests/windows/msi.sh path/to/latchkey-gateway.exe}
wine=${LATCHKEY_TEST_WINE:-/usr/lib/wine/wine64}
wineserver=$(dirname "$wine")/wineserver
t0=$SECONDS
work=$(mktemp -d /tmp/latchkey-msi.XXXXXX)
export WINEPREFIX=$work/prefix WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
cleanup() {
  "$wineserver" -k >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

fail() { echo "msi.sh: FAIL: $*" >&2; exit 1; }
# The rows of one table, without msiinfo's three header lines.
rows() { msiinfo export "$1" "$2" | tail -n +4 | tr -d '\r'; }
has() { # has MSI TABLE REGEX WHAT
  rows "$1" "$2" | grep -Eq "$3" || { rows "$1" "$2" >&2; fail "$4"; }
}
w() { "$wine" "$@" 2>/dev/null | tr -d '\r'; }
winpath() { echo "Z:$1" | tr / '\\'; }

bash installer/windows/build-msi.sh "$exe" 0.1.0 "$work/gateway-0.1.0.msi" >/dev/null
bash installer/windows/build-msi.sh "$exe" 0.1.1 "$work/gateway-0.1.1.msi" >/dev/null
msi=$work/gateway-0.1.0.msi

# --- the tables -----------------------------------------------------------------------------
tab=$'\t'
has "$msi" ServiceInstall "^SvcGateway${tab}LatchkeyGateway${tab}Latchkey Gateway${tab}16${tab}2${tab}32769${tab}${tab}${tab}NT SERVICE\\\\LatchkeyGateway${tab}${tab}run --service --config \"\\[CONFIGDIR\\]gateway.toml\"${tab}CmpGateway" \
  "ServiceInstall: own process, automatic, vital, as NT SERVICE\\LatchkeyGateway, run --service"
# 162 = stop on install (an upgrade replaces a stopped exe) + stop and delete on uninstall; no start.
has "$msi" ServiceControl "^SvcGatewayControl${tab}LatchkeyGateway${tab}162${tab}${tab}1${tab}CmpGateway" \
  "ServiceControl: stop on install and uninstall, delete on uninstall, never started by the MSI"
has "$msi" MsiServiceConfig "^SvcGatewayDelayed${tab}LatchkeyGateway${tab}5${tab}3${tab}1${tab}CmpGateway" \
  "MsiServiceConfig: delayed automatic start"
has "$msi" CustomAction "^LkgwRecovery${tab}3122${tab}LKGW_SC${tab}failure LatchkeyGateway reset= 86400 actions= restart/60000/restart/60000//0" \
  "recovery actions (deferred, elevated sc.exe failure)"
has "$msi" File "^GatewayExe${tab}CmpGateway${tab}latchkey-gateway.exe${tab}$(stat -c %s "$exe")${tab}" "File: the exe"
has "$msi" File "^GatewayToml${tab}CmpConfig${tab}gateway.toml${tab}" "File: the configuration template"
# 400 = 64-bit (256) + NeverOverwrite (128) + Permanent (16).
has "$msi" Component "^CmpConfig${tab}\\{[0-9A-F-]+\\}${tab}CONFIGDIR${tab}400${tab}" \
  "the configuration's component: permanent and never overwritten"
has "$msi" Directory "^CONFIGDIR${tab}CommonAppDataFolder${tab}Latchkey$" "the configuration under ProgramData"
has "$msi" Directory "^INSTALLDIR${tab}ProgramFiles64Folder${tab}Latchkey$" "the exe under Program Files"
has "$msi" Registry "^reg[0-9A-F]+${tab}2${tab}SYSTEM\\\\CurrentControlSet\\\\Services\\\\EventLog\\\\Application\\\\Latchkey Gateway${tab}EventMessageFile${tab}\\[#GatewayExe\\]${tab}CmpGateway" \
  "the event-log source, its messages in the exe"
has "$msi" MsiLockPermissionsEx "^LockConfigDir${tab}CONFIGDIR${tab}CreateFolder${tab}D:PAI\\(A;OICI;FA;;;SY\\)\\(A;OICI;FA;;;BA\\)\\(A;OICI;0x1200a9;;;S-1-5-80-" \
  "the configuration folder: SYSTEM and Administrators full, the service read, nobody else"
has "$msi" Upgrade "^\\{26EF45DC-76AB-4762-BBB6-E4BA95CBDFD2\\}${tab}${tab}0\\.1\\.0${tab}" "the upgrade code (older versions are replaced)"
has "$msi" Property "^UpgradeCode${tab}\\{26EF45DC-76AB-4762-BBB6-E4BA95CBDFD2\\}$" "UpgradeCode property"
has "$msi" Property "^ProductVersion${tab}0\\.1\\.0$" "ProductVersion"

# --- install under Wine ----------------------------------------------------------------------
"$wine" wineboot -i >/dev/null 2>&1
"$wineserver" -w
drive=$WINEPREFIX/drive_c
"$wine" msiexec /i "$(winpath "$msi")" /qn || fail "msiexec /i 0.1.0 failed"
"$wineserver" -w
[ -f "$drive/Program Files/Latchkey/latchkey-gateway.exe" ] || fail "the exe is not under Program Files\\Latchkey"
cmp -s "$exe" "$drive/Program Files/Latchkey/latchkey-gateway.exe" || fail "the installed exe differs"
[ -f "$drive/ProgramData/Latchkey/gateway.toml" ] || fail "the configuration template is not under ProgramData\\Latchkey"
svc=$(w reg query 'HKLM\System\CurrentControlSet\Services\LatchkeyGateway')
grep -q 'ObjectName    REG_SZ    NT SERVICE\\LatchkeyGateway' <<<"$svc" || { echo "$svc" >&2; fail "service account"; }
grep -q 'Start    REG_DWORD    0x2' <<<"$svc" || { echo "$svc" >&2; fail "automatic start"; }
# Wine's msi writes the image path without quotes; Windows Installer quotes it (see
# installer/windows/README.md, "Check the installed service").
grep -Eq 'ImagePath    REG_SZ    "?C:\\Program Files\\Latchkey\\latchkey-gateway.exe"? run --service --config "C:\\ProgramData\\Latchkey\\gateway.toml"' <<<"$svc" \
  || { echo "$svc" >&2; fail "service command line"; }
w reg query 'HKLM\System\CurrentControlSet\Services\EventLog\Application\Latchkey Gateway' \
  | grep -q 'EventMessageFile    REG_SZ    C:\\Program Files\\Latchkey\\latchkey-gateway.exe' || fail "event-log source"

# --- the service under Wine's service control manager ------------------------------------------
# Test-only: the randomness shim Wine 8 lacks (tests/windows/bcryptprimitives.c), beside the exe.
cp "$(dirname "$exe")/bcryptprimitives.dll" "$drive/Program Files/Latchkey/"
state() { w sc query LatchkeyGateway | awk '/STATE/ {print $4} /WIN32_EXIT_CODE/ {print $3}' | paste -sd' '; }
wait_state() { # wait_state "STOPPED 1" WHAT
  for _ in $(seq 1 40); do [ "$(state)" = "$1" ] && return 0; sleep 0.5; done
  fail "$2: the service is '$(state)', not '$1'"
}
# A new Wine session starts its automatic services, as Windows does at boot; the event log's
# messages go to Wine's eventlog debug channel, in the stderr of the session's first process.
"$wineserver" -k >/dev/null 2>&1 || true
"$wineserver" -p
WINEDEBUG=-all,err+eventlog "$wine" sc start LatchkeyGateway >/dev/null 2>"$work/events.log" || true
wait_state "STOPPED 1" "on the template configuration"
grep -q 'ReportEventW L"latchkey-gateway service stopped: C:\\\\ProgramData\\\\Latchkey\\\\gateway.toml' "$work/events.log" \
  || { cat "$work/events.log" >&2; fail "no event-log message naming the configuration"; }
cat > "$drive/ProgramData/Latchkey/gateway.toml" <<'EOF'
# written by tests/windows/msi.sh: a portal that never answers, so the agent keeps retrying
[ad]
url = "ldaps://127.0.0.1:1"
bind_dn = "svc-latchkey@lab.test"
password_file = "ad.pw"
[portal]
url = "http://127.0.0.1:9"
credential_file = "gateway.credential"
[jobs]
unlock = true
EOF
echo "not-a-real-password" >"$drive/ProgramData/Latchkey/ad.pw"
echo "lkgw_00000000-0000-0000-0000-000000000000.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" \
  >"$drive/ProgramData/Latchkey/gateway.credential"
w sc start LatchkeyGateway >/dev/null || fail "sc start on a working configuration"
wait_state "RUNNING 0" "on a working configuration"
sleep 2
[ "$(state)" = "RUNNING 0" ] || fail "the service did not keep running: $(state)"
w sc stop LatchkeyGateway >/dev/null || true
wait_state "STOPPED 0" "after sc stop"
"$wineserver" -k >/dev/null 2>&1 || true
rm "$drive/Program Files/Latchkey/bcryptprimitives.dll"

# --- upgrade: the operator's configuration stays, one product remains --------------------------
echo "# the operator's own line" >>"$drive/ProgramData/Latchkey/gateway.toml"
"$wine" msiexec /i "$(winpath "$work/gateway-0.1.1.msi")" /qn || fail "msiexec /i 0.1.1 (upgrade) failed"
"$wineserver" -w
grep -q "the operator's own line" "$drive/ProgramData/Latchkey/gateway.toml" || fail "the upgrade replaced the configuration"
[ -f "$drive/Program Files/Latchkey/latchkey-gateway.exe" ] || fail "the upgrade lost the exe"
products=$(w reg query 'HKLM\Software\Microsoft\Windows\CurrentVersion\Uninstall' /s | grep -c 'DisplayName    REG_SZ    Latchkey Gateway' || true)
[ "$products" = 1 ] || fail "after the upgrade $products products are installed, not 1"
w reg query 'HKLM\Software\Microsoft\Windows\CurrentVersion\Uninstall' /s | grep -q 'DisplayVersion    REG_SZ    0.1.1' \
  || fail "the installed version is not 0.1.1"

# --- uninstall: exe and service gone, configuration kept ---------------------------------------
"$wine" msiexec /x "$(winpath "$work/gateway-0.1.1.msi")" /qn || fail "msiexec /x failed"
"$wineserver" -w
[ ! -e "$drive/Program Files/Latchkey/latchkey-gateway.exe" ] || fail "the exe outlived the uninstall"
grep -q "the operator's own line" "$drive/ProgramData/Latchkey/gateway.toml" || fail "the uninstall removed the configuration"
if w reg query 'HKLM\System\CurrentControlSet\Services\LatchkeyGateway' | grep -q ImagePath; then
  fail "the service outlived the uninstall"
fi
echo "gateway MSI: tables, install, service start/stop, upgrade and uninstall under Wine OK in $((SECONDS - t0)) s"
