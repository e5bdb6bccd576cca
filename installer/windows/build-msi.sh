#!/usr/bin/env bash
# Builds the Latchkey gateway MSI on Linux: installer/windows/build-msi.sh EXE VERSION OUT.msi
#   EXE      latchkey-gateway.exe (x86_64-pc-windows-*)
#   VERSION  MAJOR.MINOR.PATCH (the ProductVersion; raise it for every release, or the
#            older MSI is not replaced)
# Needs msitools' wixl and msibuild (Debian: apt-get install wixl msitools).
#
# wixl (0.101) compiles gateway.wxs; msibuild then adds what wixl cannot express, all native
# Windows Installer 5.0 tables/columns (see the header of gateway.wxs):
#   * CmpConfig (gateway.toml) Permanent + NeverOverwrite; the service Vital;
#   * MsiServiceConfig + MsiConfigureServices: delayed automatic start;
#   * MsiLockPermissionsEx on C:\ProgramData\Latchkey: SYSTEM and Administrators full control,
#     NT SERVICE\LatchkeyGateway read, nothing for anyone else, not inherited from ProgramData
#     (whose default ACL lets every user read, and create files in, new subfolders);
#   * a same-version Upgrade row, so that a rebuilt MSI of an installed version replaces it
#     instead of installing a second product beside it;
#   * the recovery custom action's sequence number (wixl puts After="InstallServices" after
#     InstallFinalize, so gateway.wxs gives Sequence="5810" and this checks it).
set -euo pipefail

die() { echo "build-msi.sh: $*" >&2; exit 1; }

[ $# -eq 3 ] || die "usage: build-msi.sh EXE VERSION OUT.msi"
exe=$1 version=$2 out=$3
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

[ -f "$exe" ] || die "no such file: $exe"
[[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "version must be MAJOR.MINOR.PATCH, got '$version'"
command -v wixl >/dev/null || die "wixl not found (apt-get install wixl)"
command -v msibuild >/dev/null || die "msibuild not found (apt-get install msitools)"

# The service's virtual account SID: S-1-5-80- and SHA-1 of the upper-case service name in
# UTF-16LE as five little-endian 32-bit words. A SID, not the name: the account resolves only
# once the service exists, and CreateFolders runs before InstallServices.
service_sid=S-1-5-80-1095500682-540811030-1657681941-623974913-1865622665
upgrade_code='{26EF45DC-76AB-4762-BBB6-E4BA95CBDFD2}'

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
# wixl takes File/@Source relative to the current directory only (no absolute paths).
cp "$exe" "$stage/latchkey-gateway.exe"
cp "$here/gateway.toml" "$stage/gateway.toml"
(cd "$stage" && wixl -a x64 -D Version="$version" -D GatewayExe=latchkey-gateway.exe \
    -o "$stage/gateway.msi" "$here/gateway.wxs")

sddl="D:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;0x1200a9;;;$service_sid)"
msibuild "$stage/gateway.msi" \
    -q "UPDATE \`Component\` SET \`Attributes\` = 400 WHERE \`Component\` = 'CmpConfig'" \
    -q "UPDATE \`ServiceInstall\` SET \`ErrorControl\` = 32769 WHERE \`ServiceInstall\` = 'SvcGateway'" \
    -q "CREATE TABLE \`MsiServiceConfig\` (\`MsiServiceConfig\` CHAR(72) NOT NULL, \`Name\` CHAR(255) NOT NULL, \`Event\` SHORT NOT NULL, \`ConfigType\` LONG NOT NULL, \`Argument\` CHAR(0), \`Component_\` CHAR(72) NOT NULL PRIMARY KEY \`MsiServiceConfig\`)" \
    -q "INSERT INTO \`MsiServiceConfig\` (\`MsiServiceConfig\`, \`Name\`, \`Event\`, \`ConfigType\`, \`Argument\`, \`Component_\`) VALUES ('SvcGatewayDelayed', 'LatchkeyGateway', 5, 3, '1', 'CmpGateway')" \
    -q "INSERT INTO \`InstallExecuteSequence\` (\`Action\`, \`Sequence\`) VALUES ('MsiConfigureServices', 5850)" \
    -q "CREATE TABLE \`MsiLockPermissionsEx\` (\`MsiLockPermissionsEx\` CHAR(72) NOT NULL, \`LockObject\` CHAR(72) NOT NULL, \`Table\` CHAR(32) NOT NULL, \`SDDLText\` CHAR(0) NOT NULL, \`Condition\` CHAR(255) PRIMARY KEY \`MsiLockPermissionsEx\`)" \
    -q "INSERT INTO \`MsiLockPermissionsEx\` (\`MsiLockPermissionsEx\`, \`LockObject\`, \`Table\`, \`SDDLText\`) VALUES ('LockConfigDir', 'CONFIGDIR', 'CreateFolder', '$sddl')" \
    -q "INSERT INTO \`Upgrade\` (\`UpgradeCode\`, \`VersionMin\`, \`VersionMax\`, \`Attributes\`, \`ActionProperty\`) VALUES ('$upgrade_code', '$version', '$version', 769, 'WIX_UPGRADE_DETECTED')"

seq=$(msiinfo export "$stage/gateway.msi" InstallExecuteSequence | awk -F'\t' '
    $1 == "InstallServices" { i = $3 } $1 == "LkgwRecovery" { r = $3 }
    $1 == "MsiConfigureServices" { c = $3 } $1 == "StartServices" { s = $3 }
    $1 == "InstallFinalize" { f = $3 }
    END { print (i < r && r < c && c < s && s < f) ? "ok" : "bad " i " " r " " c " " s " " f }')
[ "$seq" = ok ] || die "unexpected InstallExecuteSequence (InstallServices LkgwRecovery MsiConfigureServices StartServices InstallFinalize): $seq"

mkdir -p "$(dirname "$out")"
mv "$stage/gateway.msi" "$out"
echo "built $out (Latchkey Gateway $version)"
