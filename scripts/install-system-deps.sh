#!/bin/sh
# Debian packages the tests and benchmarks start their own servers from: PostgreSQL (with the
# wal2json logical decoding plugin) and Redis; kcat, the Kafka tool the README reads topics with;
# Chromium and CJK fonts for the public site's browser test. Does nothing when they are already installed.
set -eu
need=""
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need="$need postgresql"
ls /usr/lib/postgresql/*/lib/wal2json.so >/dev/null 2>&1 || need="$need postgresql-15-wal2json"
command -v redis-server >/dev/null 2>&1 || need="$need redis-server"
command -v kcat >/dev/null 2>&1 || need="$need kcat"
command -v chromium >/dev/null 2>&1 || need="$need chromium"
ls /usr/share/fonts/opentype/noto/NotoSansCJK* >/dev/null 2>&1 || need="$need fonts-noto-cjk"
[ -z "$need" ] && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "installing Debian packages:$need"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $need >/dev/null
