#!/usr/bin/env bash
# Installs the Latchkey portal as a systemd service. Run as root from the repository root after
# `cargo build --release -p latchkey` (add `--features hid` for `latchkey passkey provision` with
# USB security keys; it needs libudev-dev and pkg-config to build). Idempotent: existing
# configuration is never overwritten.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ "$(id -u)" -eq 0 ] || { echo "run as root" >&2; exit 1; }
bin=target/release/latchkey
[ -x "$bin" ] || { echo "build first: cargo build --release -p latchkey" >&2; exit 1; }

id latchkey >/dev/null 2>&1 || useradd --system --home-dir /var/lib/latchkey --shell /usr/sbin/nologin latchkey
install -m 0755 "$bin" /usr/local/bin/latchkey
install -d -m 0750 -o root -g latchkey /etc/latchkey /etc/latchkey/policies
install -d -m 0700 -o latchkey -g latchkey /var/lib/latchkey
# Policies: the shipped default matches nobody; keep any the admin already has.
[ -e /etc/latchkey/policies/default.toml ] || install -m 0640 -o root -g latchkey policies/default.toml /etc/latchkey/policies/
if [ ! -e /etc/latchkey/latchkey.toml ]; then
  cat > /etc/latchkey/latchkey.toml <<'TOML'
# See README.md, "Configuration". Secrets go in files readable only by the latchkey user.
[entra]
tenant_id = "contoso.onmicrosoft.com"
client_id = "00000000-0000-0000-0000-000000000000"
client_secret_file = "/etc/latchkey/client-secret"

[server]
listen = "127.0.0.1:8080"            # behind your reverse proxy (TLS)

[portal]
public_url = "https://reset.contoso.com"
trusted_proxies = ["127.0.0.1"]

[store]
database_url = "sqlite:///var/lib/latchkey/latchkey.db"
key_file = "/var/lib/latchkey/latchkey.key"

[policies]
dir = "/etc/latchkey/policies"
TOML
  chown root:latchkey /etc/latchkey/latchkey.toml
  chmod 0640 /etc/latchkey/latchkey.toml
  echo "wrote /etc/latchkey/latchkey.toml: edit it, then run: latchkey check --config /etc/latchkey/latchkey.toml"
fi
install -m 0644 installer/linux/latchkey.service /etc/systemd/system/latchkey.service
if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  echo "enable with: systemctl enable --now latchkey"
fi
