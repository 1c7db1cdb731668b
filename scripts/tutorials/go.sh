#!/usr/bin/env bash
# Runs the RabbitMQ tutorial scenarios with the Go client: builds go/main.go (beside this
# script) in GOPATH mode against Debian's golang-github-rabbitmq-amqp091-go-dev under
# /usr/share/gocode (no module downloads) into ${XDG_CACHE_HOME:-~/.cache}/warrenmq-tutorials/go
# when missing or older than the source, then runs it. scripts/install-test-deps.sh installs
# golang-go and the library.
#   go.sh CONSUMER_URL PRODUCER_URL classic|quorum [SCENARIO...]
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/warrenmq-tutorials/go
BIN=$CACHE/tutorials
GOPATH_DIR=/usr/share/gocode
[ -d "$GOPATH_DIR/src/github.com/rabbitmq/amqp091-go" ] || {
  echo "go.sh: $GOPATH_DIR/src/github.com/rabbitmq/amqp091-go is missing (scripts/install-test-deps.sh installs it)" >&2; exit 2; }
command -v go >/dev/null 2>&1 || { echo "go.sh: go is missing (scripts/install-test-deps.sh installs it)" >&2; exit 2; }
mkdir -p "$CACHE"
(
  flock 9  # concurrent runs build once
  if [ ! -x "$BIN" ] || [ -n "$(find "$HERE/go" -name '*.go' -newer "$BIN")" ]; then
    cd "$HERE/go"
    GO111MODULE=off GOPATH="$GOPATH_DIR" GOCACHE="$CACHE/gocache" GOPROXY=off GOFLAGS= \
      go build -o "$BIN.tmp" .
    mv -f "$BIN.tmp" "$BIN"
  fi
) 9>"$CACHE/.lock"
exec "$BIN" "$@"
