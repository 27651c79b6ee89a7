# scripts/lib/podman.sh, sourced by scripts/package and scripts/test-packages: the settings
# Podman needs on this kind of machine, in one place. Debian 12's default runtime, crun, fails
# on a kernel with hybrid cgroups (v1 with a v2 mount), and the default ulimits Podman adds to
# every container are refused there; runc with the cgroupfs manager works, with no default
# ulimits. They go into a containers.conf of our own, named by CONTAINERS_CONF for the podman
# commands this shell starts (and the tests it runs), so the machine's own configuration is
# left alone. The sourcing script has `cd`-ed to the repository's top directory.

# use_local_podman_settings: writes target/package/podman/containers.conf and exports
# CONTAINERS_CONF naming it.
use_local_podman_settings() {
    local dir=target/package/podman
    mkdir -p "$dir"
    cat >"$dir/containers.conf" <<'CONF'
# Written by scripts/lib/podman.sh: runc instead of crun, cgroupfs, no default ulimits.
[containers]
default_ulimits = []

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
CONF
    CONTAINERS_CONF=$(pwd)/$dir/containers.conf
    export CONTAINERS_CONF
}
