#!/bin/sh
# Install the Debian packages chartkeep needs to build, test and run, and
# only those that are missing.  Quiet when nothing is missing.
set -eu

PKGS="gcc libc6-dev make pkg-config libsqlite3-dev libmicrohttpd-dev libjson-c-dev
libsodium-dev libicu-dev libcmocka-dev libxml2-dev python3 clang libclang-rt-14-dev valgrind curl openssl"

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

echo "deps: installing$missing"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
