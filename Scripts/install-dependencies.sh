#!/usr/bin/env bash
# Installs the Debian packages InfinityDB builds against (OpenSSL 3, SQLite, zstd, libcurl for
# the S3 backend's requests), if missing, and libxml2, which Foundation's XML parser (reading S3
# listings) links.
set -euo pipefail
packages=(libssl-dev libsqlite3-dev libzstd-dev pkg-config libcurl4-openssl-dev libxml2-dev)
missing=()
for package in "${packages[@]}"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
echo "installing ${missing[*]}…" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq "${missing[@]}" >/dev/null
