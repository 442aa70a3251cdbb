# shellcheck shell=bash
# Sourced by ./mvnw and ./isthmus: points JAVA_HOME at a JDK whose feature version is >= 22.
# Order: $JAVA_HOME if it qualifies, then the newest qualifying JDK under /usr/lib/jvm.
# Prints one sentence and returns 1 when there is none.

isthmus_jdk_feature() {
  # $1: a JDK home. Prints its feature version (e.g. 25) or nothing.
  local rel="$1/release" v=""
  if [ -r "$rel" ]; then
    v=$(sed -n 's/^JAVA_VERSION="\([0-9][0-9]*\).*/\1/p' "$rel")
  fi
  if [ -z "$v" ] && [ -x "$1/bin/java" ]; then
    v=$("$1/bin/java" -version 2>&1 | sed -n 's/.*version "\([0-9][0-9]*\).*/\1/p' | head -n 1)
  fi
  [ "$v" = "1" ] && v=8
  printf '%s' "$v"
}

isthmus_find_jdk() {
  local min=22 v cand best="" bestv=0
  if [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/javac" ]; then
    v=$(isthmus_jdk_feature "$JAVA_HOME")
    if [ -n "$v" ] && [ "$v" -ge "$min" ]; then
      export JAVA_HOME
      return 0
    fi
  fi
  for cand in /usr/lib/jvm/*; do
    [ -x "$cand/bin/javac" ] || continue
    v=$(isthmus_jdk_feature "$cand")
    if [ -n "$v" ] && [ "$v" -ge "$min" ] && [ "$v" -gt "$bestv" ]; then
      best=$cand
      bestv=$v
    fi
  done
  if [ -z "$best" ]; then
    echo "Isthmus needs a JDK >= $min: none found in JAVA_HOME (${JAVA_HOME:-unset}) or under /usr/lib/jvm; install one (e.g. a Temurin 25 JDK) or point JAVA_HOME at it." >&2
    return 1
  fi
  JAVA_HOME=$best
  export JAVA_HOME
}
