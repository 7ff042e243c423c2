# Squall environment: source it, don't run it.
#
#   source tornado-env.sh [TORNADOVM_SDK_DIR]
#
# Finds a JDK >= 25 (JAVA_HOME if it is one, else the newest in the system's JVM directory) and a
# TornadoVM SDK (the argument, else TORNADOVM_HOME), exports JAVA_HOME, TORNADOVM_HOME and PATH, and
# says in one line what it found. Squall's default build and the JVM backend need only the JDK.

_squall_java_major() { # prints the feature version of the JDK at $1, or nothing
    [ -x "$1/bin/java" ] && [ -x "$1/bin/javac" ] || return 0
    "$1/bin/java" -XshowSettings:properties -version 2>&1 \
        | sed -n 's/^ *java\.specification\.version = \([0-9]*\).*/\1/p' | head -n 1
}

_squall_find_jdk() {
    local candidate major best="" best_major=0
    if [ -n "${JAVA_HOME:-}" ]; then
        major=$(_squall_java_major "$JAVA_HOME")
        if [ -n "$major" ] && [ "$major" -ge 25 ]; then echo "$JAVA_HOME"; return; fi
    fi
    for candidate in /usr/lib/jvm/* /usr/java/* /opt/java/* /Library/Java/JavaVirtualMachines/*/Contents/Home; do
        [ -d "$candidate" ] || continue
        major=$(_squall_java_major "$candidate")
        if [ -n "$major" ] && [ "$major" -ge 25 ] && [ "$major" -gt "$best_major" ]; then
            best=$candidate; best_major=$major
        fi
    done
    echo "$best"
}

_squall_find_tornado() {
    local candidate
    for candidate in "${1:-}" "${TORNADOVM_HOME:-}"; do
        [ -n "$candidate" ] && [ -x "$candidate/bin/tornado" ] && { (cd "$candidate" && pwd -P); return 0; }
    done
    return 0  # none found is not a failure (callers may run under set -e)
}

_squall_jdk=$(_squall_find_jdk)
_squall_tornado=$(_squall_find_tornado "${1:-}")
if [ -z "$_squall_jdk" ]; then
    echo "squall: no JDK >= 25 found (JAVA_HOME=${JAVA_HOME:-unset}, /usr/lib/jvm); install one, e.g. Temurin 25 (apt-get install temurin-25-jdk from Adoptium's repository) or set JAVA_HOME" >&2
    unset _squall_jdk _squall_tornado
    return 1 2>/dev/null || exit 1
fi
export JAVA_HOME=$_squall_jdk
case ":$PATH:" in *":$JAVA_HOME/bin:"*) ;; *) export PATH="$JAVA_HOME/bin:$PATH" ;; esac
if [ -n "$_squall_tornado" ]; then
    export TORNADOVM_HOME=$_squall_tornado
    case ":$PATH:" in *":$TORNADOVM_HOME/bin:"*) ;; *) export PATH="$TORNADOVM_HOME/bin:$PATH" ;; esac
    echo "squall: JDK $(_squall_java_major "$JAVA_HOME") at $JAVA_HOME; TornadoVM SDK at $TORNADOVM_HOME" >&2
else
    [ -n "${1:-}" ] && echo "squall: warning: $1 is not a TornadoVM SDK (no bin/tornado)" >&2
    unset TORNADOVM_HOME
    echo "squall: JDK $(_squall_java_major "$JAVA_HOME") at $JAVA_HOME; no TornadoVM SDK (JVM backend only; set TORNADOVM_HOME to use one)" >&2
fi
unset _squall_jdk _squall_tornado
