# scripts/lib/debian-packages.sh, sourced by scripts/test and scripts/demo: the one copy of "find
# what is missing, install it with apt-get (through sudo when not root), and say what and why".
#
# Each `need_*` function looks for a tool the way the scripts and the tests use it, not through
# dpkg (so a machine that has the tool from elsewhere is not sent to apt-get), and when it is
# missing adds Debian package names to the array `packages` and a line saying why to `reasons`.
# `install_packages` then installs them all in one apt-get run; when nothing is missing it does
# nothing: no `apt-get update`, no sudo.
#
# The sourcing script sets `script_name` (for messages) first.

packages=()
reasons=()

say() { printf '%s: %s\n' "$script_name" "$*" >&2; }

# need WHY PACKAGE...: the packages go on the list, with why.
need() {
    local why=$1
    shift
    packages+=("$@")
    reasons+=("$*: $why")
}

# The linker `cc` (every Rust build links with it) and the C compiler (`ring` builds C code); a
# minimal Debian has neither.
need_c_toolchain() {
    printf 'int main(void) { return 0; }\n' | cc -x c -o /dev/null - >/dev/null 2>&1 ||
        need "the C compiler and linker cargo builds with" gcc libc6-dev
}

# The trust store cargo and pip reach crates.io and PyPI through.
need_ca_certificates() {
    [ -s /etc/ssl/certs/ca-certificates.crt ] || [ -s /etc/pki/tls/certs/ca-bundle.crt ] ||
        need "the trust store for crates.io and PyPI" ca-certificates
}

# Python with venv: Radicale (and, for the tests, Xandikos and `icalendar`) are installed from
# PyPI into ./.venv by the testbed itself.
need_python_venv() {
    python3 -c 'import venv, ensurepip' >/dev/null 2>&1 ||
        need "Python with venv, for Radicale from PyPI in ./.venv" python3 python3-venv python3-pip
}

# lighttpd, started by absolute path (testbed/src/feed_server.rs, digest_front.rs).
need_lighttpd() {
    [ -x /usr/sbin/lighttpd ] || need "the web server that serves the feeds" lighttpd
}

# install_packages [--quiet] [THEN]: installs `packages` with `apt-get update` and `apt-get
# install --no-install-recommends`, through sudo when not root, after saying what and why. THEN
# is added to the message (what the script installs next). With --quiet apt-get's output goes to
# a temporary log that is shown (its end) only when apt-get fails. Exits when it cannot install.
install_packages() {
    local quiet=false
    if [ "${1-}" = --quiet ]; then
        quiet=true
        shift
    fi
    local then=${1-}
    [ ${#packages[@]} -gt 0 ] || return 0
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then
            sudo=(sudo)
        else
            say "missing Debian packages: ${packages[*]}"
            say "not root and no sudo: install them as root (apt-get install ${packages[*]}), then run $script_name again"
            exit 1
        fi
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        say "missing (Debian package names): ${packages[*]}"
        say "no apt-get here: install their equivalents by hand, then run $script_name again"
        exit 1
    fi
    local how="apt-get"
    [ ${#sudo[@]} -eq 0 ] || how="sudo apt-get"
    say "installing what is missing with $how$then:"
    local reason
    for reason in "${reasons[@]}"; do
        say "  $reason"
    done
    if ! $quiet; then
        "${sudo[@]}" apt-get update
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
            apt-get install -y --no-install-recommends "${packages[@]}"
        return 0
    fi
    local log
    log=$(mktemp "${TMPDIR:-/tmp}/calplanebot-apt-get.XXXXXX")
    if ! { "${sudo[@]}" apt-get update &&
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
            apt-get install -y --no-install-recommends "${packages[@]}"; } >"$log" 2>&1; then
        tail -n 20 "$log" >&2
        say "apt-get failed; its whole output is in $log"
        exit 1
    fi
    rm -f "$log"
}
