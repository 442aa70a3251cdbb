# shellcheck shell=bash
# Sourced by bench/compare and bench/jmh: finds a JDK >= 22 and (re)builds bench/target/benchmarks.jar
# (and with it the broker jar ./isthmus runs) when it is missing or older than any source or pom.

bench_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$bench_root/.mvn/find-jdk.sh"
isthmus_find_jdk
bench_jar="$bench_root/bench/target/benchmarks.jar"

bench_build() {
  # $1: the calling tool's name, for messages.
  local stale=""
  if [ ! -f "$bench_jar" ]; then
    stale="first run"
  elif [ -n "$(find "$bench_root" -maxdepth 1 -name pom.xml -newer "$bench_jar" -print -quit)" ] \
    || [ -n "$(find "$bench_root"/*/src "$bench_root"/*/pom.xml -newer "$bench_jar" -print -quit 2>/dev/null)" ]; then
    stale="sources changed"
  fi
  if [ -n "$stale" ]; then
    echo "$1: building bench/target/benchmarks.jar and the broker ($stale)..." >&2
    if ! (cd "$bench_root" && ./mvnw -q -B -ntp -pl bench -am -DskipTests package >&2); then
      echo "$1: the build failed (see above); fix it or run: ./mvnw -pl bench -am -DskipTests package" >&2
      exit 1
    fi
  fi
}
