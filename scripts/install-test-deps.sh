#!/usr/bin/env bash
# Installs the Debian packages the integration tests need, when missing.
# Tests start and stop the servers themselves, on 127.0.0.1 only.
#
# Cyrus IMAP: cyrus-imapd conflicts with dovecot-imapd, so its package is
# fetched with apt-get download and only unpacked (dpkg -x) into
# /opt/pimbridge-cyrus, where internal/realserver looks for its imapd; the
# rest of Cyrus installs beside Dovecot.
#
# PostgreSQL (the CRM server's second backend): tests run initdb and
# postgres from /usr/lib/postgresql/*/bin in a temp dir on 127.0.0.1; as
# root they run them as the package's "postgres" system user (runuser),
# since PostgreSQL refuses to run as root. The package's own cluster is not
# used.
set -euo pipefail
pkgs=(radicale xandikos dovecot-imapd vdirsyncer python3-caldav systemd
  cyrus-common cyrus-caldav cyrus-admin sasl2-bin postgresql)
cyrus_root=/opt/pimbridge-cyrus
cyrus_imapd=$cyrus_root/usr/lib/cyrus/bin/imapd
missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && [ -x "$cyrus_imapd" ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "install-test-deps: missing ${missing[*]} ${cyrus_imapd}; run as root or install them" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
updated=
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-test-deps: installing ${missing[*]}"
  apt-get update -qq
  updated=1
  # Debian's package scripts cannot start services here (no init); the
  # tests start their own.
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if [ ! -x "$cyrus_imapd" ]; then
  echo "install-test-deps: unpacking cyrus-imapd into $cyrus_root"
  [ -n "$updated" ] || apt-get update -qq
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  # _apt cannot write into a mktemp folder; download as root.
  (cd "$tmp" && apt-get download -q -o APT::Sandbox::User=root cyrus-imapd >/dev/null)
  mkdir -p "$cyrus_root"
  dpkg -x "$tmp"/cyrus-imapd_*.deb "$cyrus_root"
fi
