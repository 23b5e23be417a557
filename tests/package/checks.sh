# shellcheck shell=bash
# Named checks for the package and upgrade tests (sourced): each check's output goes to
# $WORK/log, its result to the lists that finish_checks writes as a JUnit file for
# run-all.sh's summary (or .ci/run's) and sums up as "N passed, N failed".
CASES=() FAILS=()

# check NAME COMMAND...: one named check.
check() {
    local name=$1; shift
    if "$@" >>"$WORK/log" 2>&1; then
        echo "ok   $name"; CASES+=("$name"); FAILS+=("")
    else
        echo "FAIL $name (see below)"; CASES+=("$name"); FAILS+=("failed: $*")
        tail -15 "$WORK/log" | sed 's/^/     /'
    fi
}

# finish_checks SUITE [RESULT_XML [TOTAL]]: the results; true when every check passed. TOTAL:
# a file to write "PASSED FAILED 0" to (what .ci/run reads), for a script that runs alone.
finish_checks() {
    local suite=$1 xml=${2:-} total=${3:-} failed=0 f i
    for f in "${FAILS[@]}"; do [ -n "$f" ] && failed=$((failed + 1)); done
    if [ -n "$xml" ]; then
        {
            echo "<testsuites tests=\"${#CASES[@]}\" failures=\"$failed\" errors=\"0\"><testsuite name=\"$suite\">"
            for i in "${!CASES[@]}"; do
                printf '<testcase name="%s">' "${CASES[$i]}"
                [ -n "${FAILS[$i]}" ] && printf '<failure message="%s"/>' "$(printf '%s' "${FAILS[$i]}" | tr -d '"<>&')"
                echo '</testcase>'
            done
            echo "</testsuite></testsuites>"
        } >"$xml"
    fi
    [ -z "$total" ] || echo "$(( ${#CASES[@]} - failed )) $failed 0" >"$total"
    echo "$(( ${#CASES[@]} - failed )) passed, $failed failed"
    [ "$failed" = 0 ]
}

# The md5 dpkg recorded for FILE (absolute) in PACKAGE's md5sums.
packaged_md5() {
    awk -v f="${2#/}" '$2 == f {print $1}' "/var/lib/dpkg/info/$1.md5sums"
}
