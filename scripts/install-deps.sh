#!/usr/bin/env bash
# Installs what livesnap needs on a Debian machine: FFmpeg's libraries and libjpeg-turbo (cgo), ffmpeg itself
# (tests and the demo), pkg-config, and the Go modules. Installs only what is missing.
# --with-test-tools also installs what only the tests use: PostgreSQL's server (the PostgreSQL
# store's tests start a throwaway one), versitygw (an S3 server), and gst-rtsp-server with the
# GStreamer plugins it needs (a real RTSP server for the RTSP input's tests, run with
# /usr/bin/python3).
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(ffmpeg libavcodec-dev libavformat-dev libavutil-dev libswscale-dev libturbojpeg0-dev pkg-config gcc)
[ "${1:-}" = "--with-test-tools" ] && packages+=(postgresql-15 python3-gi gir1.2-gstreamer-1.0 gir1.2-gst-rtsp-server-1.0
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

command -v go >/dev/null || { echo "Go is required (https://go.dev/dl); /usr/local/go/bin must be on PATH" >&2; exit 1; }
go mod download

# versitygw (Apache-2.0): the S3-compatible server the object storage tests run against.
if [ "${1:-}" = "--with-test-tools" ] && ! command -v versitygw >/dev/null && [ ! -x bin/versitygw ]; then
  echo "installing versitygw v1.8.0 into bin/"
  GOBIN="$PWD/bin" go install github.com/versity/versitygw/cmd/versitygw@v1.8.0
fi
