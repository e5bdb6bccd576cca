#!/usr/bin/env bash
# Benchmark of `latchkey-gateway check` against ldapsearch on a big Samba AD domain (issue 5).
#
#   bash tests/samba/bench.sh            # 1,000 then 10,000 users in 50 OUs (about 2-3 minutes)
#   USERS="1000 10000" OUS=50 RUNS=3 bash tests/samba/bench.sh
#
# Starts its own throwaway DC (tests/samba/lab.sh with its own state file; refuses to run while
# another lab holds 127.0.0.1:636), seeds users in one ldb transaction through Samba's Python
# bindings (LDAP adds cost ~55 ms each here), then for each size times, in the same run:
#   - `latchkey-gateway check --json` (release build), bound as the delegated connector, scope =
#     the seeded OU tree, and its peak RSS (/usr/bin/time %M);
#   - ldapsearch fetching the same objects and attributes with the same paging (500) and the same
#     SD-flags control (DACL only): the OUs with objectClass + nTSecurityDescriptor, and every user
#     with sAMAccountName + adminCount + memberOf + nTSecurityDescriptor (the check's two big
#     searches).
# Each is the median of RUNS runs. Not part of tests/run. Needs root (samba binds port 636).
set -euo pipefail
cd "$(dirname "$0")/../.."
USERS=${USERS:-"1000 10000"}
OUS=${OUS:-50}
RUNS=${RUNS:-3}
export LAB_STATE=/tmp/latchkey-samba-lab.bench.dir
LAB="bash tests/samba/lab.sh"

if (exec 3<>/dev/tcp/127.0.0.1/636) 2>/dev/null && [ ! -f "$LAB_STATE" ]; then
  echo "another Samba lab is listening on 127.0.0.1:636; stop it first (tests/samba/lab.sh down)" >&2
  exit 1
fi
trap '$LAB down >/dev/null 2>&1 || true' EXIT
$LAB install >/dev/null
$LAB up
$LAB seed >/dev/null
$LAB delegate >/dev/null
eval "$($LAB env)"
D=$(cat "$LAB_STATE")
export LDAPTLS_CACERT=$LATCHKEY_TEST_CA_FILE

echo "building latchkey-gateway (release)"
cargo build --release -q -p latchkey-gateway
BIN=target/release/latchkey-gateway

BASE="OU=Bench,$LATCHKEY_TEST_BASE_DN"
WORK=$(mktemp -d /tmp/latchkey-bench.XXXXXX)
cat > "$WORK/gateway.toml" <<TOML
[ad]
url = "$LATCHKEY_TEST_LDAP_URL"
bind_dn = "$LATCHKEY_TEST_CONNECTOR_DN"
password_file = "$LATCHKEY_TEST_CONNECTOR_PASSWORD_FILE"
ca_file = "$LATCHKEY_TEST_CA_FILE"
base_dn = "$BASE"
connector_account = "$LATCHKEY_TEST_CONNECTOR"
TOML

seed() {  # seed FROM COUNT: users FROM..FROM+COUNT-1 spread over $OUS OUs (created when FROM=0)
  /usr/bin/python3 - "$D" "$LATCHKEY_TEST_BASE_DN" "$1" "$2" "$OUS" <<'PY'
import sys, time
from samba.samdb import SamDB
from samba.auth import system_session
from samba.param import LoadParm
d, base, start, count, ous = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
lp = LoadParm(); lp.load(d + "/etc/smb.conf")
db = SamDB(url=d + "/private/sam.ldb", session_info=system_session(), lp=lp)
t = time.time()
db.transaction_start()
root = "OU=Bench," + base
if start == 0:
    db.add({"dn": root, "objectClass": "organizationalUnit"})
    for o in range(ous):
        db.add({"dn": "OU=b%02d,%s" % (o, root), "objectClass": "organizationalUnit"})
for i in range(start, start + count):
    # Disabled, no password (hashing a password per user would dominate the seeding time).
    db.add({"dn": "CN=bu%05d,OU=b%02d,%s" % (i, i % ous, root), "objectClass": "user",
            "sAMAccountName": "bu%05d" % i, "userAccountControl": "546"})
    if (i - start) % 1000 == 999:  # one transaction per 1,000: a huge one gets slower per add
        db.transaction_commit()
        db.transaction_start()
db.transaction_commit()
print("seeded %d users in %.1f s" % (count, time.time() - t))
PY
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

run_check() {  # prints "seconds peak_rss_kib"
  /usr/bin/time -f "%e %M" -o "$WORK/time" "$BIN" check --config "$WORK/gateway.toml" --json \
    > "$WORK/check.json" || true   # exit 1 = a requirement failed (e.g. a warning-free lab): fine
  grep -q '"checks"' "$WORK/check.json" || { cat "$WORK/check.json" >&2; exit 1; }
  cat "$WORK/time"
}

run_ldapsearch() {
  /usr/bin/time -f "%e %M" -o "$WORK/time" bash -c '
    S=(-LLL -x -H "$LATCHKEY_TEST_LDAP_URL" -D "$LATCHKEY_TEST_CONNECTOR_DN" -y "$LATCHKEY_TEST_CONNECTOR_PASSWORD_FILE"
       -E "!1.2.840.113556.1.4.801=::MAMCAQQ=" -E pr=500/noprompt -b "$0")
    ldapsearch "${S[@]}" "(objectClass=organizationalUnit)" objectClass nTSecurityDescriptor > "$1/ous.ldif"
    ldapsearch "${S[@]}" "(&(objectCategory=person)(objectClass=user))" sAMAccountName adminCount memberOf nTSecurityDescriptor > "$1/users.ldif"
  ' "$BASE" "$WORK"
  cat "$WORK/time"
}

seeded=0
printf '\n%-7s %-10s %-12s %-12s %-8s %-14s %-14s\n' users objects check_s ldapsearch_s ratio check_rss_MiB ldapsearch_rss_MiB
for n in $USERS; do
  t0=$(date +%s.%N)
  seed "$seeded" $((n - seeded)) >&2
  seeded=$n
  c_times=(); l_times=(); c_rss=0; l_rss=0
  for _ in $(seq 1 "$RUNS"); do
    read -r ct cr < <(run_check); c_times+=("$ct"); ((cr > c_rss)) && c_rss=$cr
    read -r lt lr < <(run_ldapsearch); l_times+=("$lt"); ((lr > l_rss)) && l_rss=$lr
  done
  found=$(grep -c '^dn:' "$WORK/users.ldif")
  [ "$found" -ge "$n" ] || { echo "ldapsearch found $found users, expected $n" >&2; exit 1; }
  c=$(printf '%s\n' "${c_times[@]}" | median); l=$(printf '%s\n' "${l_times[@]}" | median)
  printf '%-7s %-10s %-12s %-12s %-8s %-14s %-14s\n' "$n" "$found" "$c" "$l" \
    "$(awk -v c="$c" -v l="$l" 'BEGIN {printf "%.2f", c / l}')" \
    "$(awk -v k="$c_rss" 'BEGIN {printf "%.1f", k / 1024}')" "$(awk -v k="$l_rss" 'BEGIN {printf "%.1f", k / 1024}')"
done
echo "(median of $RUNS runs; RSS = peak resident set of the process tree's largest process, /usr/bin/time %M)"
rm -rf "$WORK"
