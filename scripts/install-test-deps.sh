#!/usr/bin/env bash
# Installs the Debian packages the integration tests need, when missing.
# Tests start and stop the servers themselves, on 127.0.0.1 only.
set -euo pipefail
pkgs=(radicale xandikos dovecot-imapd vdirsyncer python3-caldav systemd)
missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "install-test-deps: missing ${missing[*]}; run as root or install them" >&2
  exit 1
fi
echo "install-test-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
