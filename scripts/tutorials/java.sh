#!/usr/bin/env bash
# Runs the RabbitMQ tutorial scenarios with the Java client: compiles Tutorials.java (beside
# this script) against Debian's librabbitmq-client-java and slf4j jars into
# ${XDG_CACHE_HOME:-~/.cache}/warrenmq-tutorials/java when missing or older than the source,
# then runs it. scripts/install-test-deps.sh installs the JDK and the jars.
#   java.sh CONSUMER_URL PRODUCER_URL classic|quorum [SCENARIO...]
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/warrenmq-tutorials/java
# amqp-client 5.0.0 logs through slf4j; slf4j-simple prints its warnings and errors to stderr.
CP=/usr/share/java/amqp-client.jar:/usr/share/java/slf4j-api.jar:/usr/share/java/slf4j-simple.jar
for jar in ${CP//:/ }; do
  [ -f "$jar" ] || { echo "java.sh: $jar is missing (scripts/install-test-deps.sh installs it)" >&2; exit 2; }
done
command -v javac >/dev/null 2>&1 || { echo "java.sh: javac is missing (scripts/install-test-deps.sh installs it)" >&2; exit 2; }
mkdir -p "$CACHE"
(
  flock 9  # concurrent runs compile once
  if [ ! -f "$CACHE/classes/Tutorials.class" ] || [ "$HERE/Tutorials.java" -nt "$CACHE/classes/Tutorials.class" ]; then
    rm -rf "$CACHE/classes"
    javac -nowarn -d "$CACHE/classes" -cp "$CP" "$HERE/Tutorials.java"
  fi
) 9>"$CACHE/.lock"
exec java -XX:TieredStopAtLevel=1 -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
  -cp "$CACHE/classes:$CP" Tutorials "$@"
