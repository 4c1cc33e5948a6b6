#!/usr/bin/env bash
# Two test hosts on this machine, and a Slurm cluster across them, for multi-node runs that one
# host cannot show: tasks on two Slurm nodes, rank traffic between hosts, a host going away.
# tests/test_two_hosts.py uses it. Needs root and iproute2; Slurm comes from Debian's slurm-wlm
# (installed with apt-get when missing, as .dev_scripts/cluster/local_slurm.sh does).
#
# Usage: .dev_scripts/cluster/netns_cluster.sh start [--no-slurm] | stop | status
#                                    | exec HOST CMD [ARGS...] | link HOST up|down
#   start     build the hosts, then (unless --no-slurm) start slurmctld and one slurmd per host
#             and wait until both nodes are idle. Idempotent: what already runs is left alone.
#             A start that fails undoes what it did (and says what failed).
#   stop      undo everything start did: daemons, processes still running on the hosts,
#             namespaces, links, the /etc/hosts names, files. Safe to run again.
#   status    what runs; exit status 0: hosts and Slurm, 3: hosts only, 1: nothing.
#   exec      run CMD "on" HOST: in its network namespace, with its own hostname (UTS namespace).
#   link      take HOST's link down (the host drops off the network) or bring it back.
#
# The hosts: network namespaces mmca-node1 and mmca-node2, each with one interface (eth0,
# SUBNET.1 and SUBNET.2/24), both joined by veth links to a bridge in this (the root) namespace,
# which has SUBNET.254: the "login node" where slurmctld, srun and the tests run. Rank traffic
# between the hosts crosses the veth links. /etc/hosts names both hosts (lines marked with
# "# mmconvarch netns_cluster.sh", removed on stop). Processes started with `exec` see the
# hostname mmca-nodeN.
# Slurm: its own config ($STATE/slurm.conf; set SLURM_CONF to it for srun/sinfo), slurmctld in
# the root namespace on port CTLD_PORT, and one slurmd per host started with `exec` (-N node
# name, NodeAddr = the host's address). One munged serves them all: the hosts share this
# machine's filesystem, so they share its munge key as a real cluster's nodes share theirs.
# It can run beside .dev_scripts/cluster/local_slurm.sh (other config, ports and names).
#
# Env: NETNS_CLUSTER_SUBNET (10.213.0)   first three octets of the private /24
#      NETNS_CLUSTER_CTLD_PORT (6827)    slurmctld's port (local_slurm.sh's uses 6817)
#      NETNS_CLUSTER_PARTITION (netns)   partition name
#      NETNS_CLUSTER_CPUS (2)            CPUs each node offers
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# pid_alive, stop_pidfile, install_packages, munge_works, start_munge
# shellcheck source=local_slurm.sh
source "$HERE/local_slurm.sh"

NODES=(mmca-node1 mmca-node2)
SUBNET=${NETNS_CLUSTER_SUBNET:-10.213.0}
CTLD_ADDR=$SUBNET.254
CTLD_PORT=${NETNS_CLUSTER_CTLD_PORT:-6827}
PARTITION=${NETNS_CLUSTER_PARTITION:-netns}
NODE_CPUS=${NETNS_CLUSTER_CPUS:-2}
BRIDGE=mmca-br0
MARK='# mmconvarch netns_cluster.sh'
STATE=/run/mmca-netns            # what start made (the "owned" list), pid files, logs, config
OWNED=$STATE/owned
CONF=$STATE/slurm.conf
LOGS=$STATE/log
SPOOL=/var/spool/mmca-netns
RUN=$STATE                       # start_munge (local_slurm.sh) marks a munged it started here

log() { echo "[netns_cluster] $*" >&2; }
die() { log "error: $*"; exit 1; }

node_index() {  # mmca-node2 -> 2; anything else: error
    local i
    for i in "${!NODES[@]}"; do
        [ "${NODES[$i]}" = "$1" ] && { echo $(( i + 1 )); return; }
    done
    die "unknown host '$1'; the hosts are ${NODES[*]}"
}
node_addr() { echo "$SUBNET.$(node_index "$1")"; }
node_veth() { echo "mmca-veth$(node_index "$1")"; }

owns() { [ -f "$OWNED" ] && grep -qxF "$1" "$OWNED"; }
own() { owns "$1" || echo "$1" >> "$OWNED"; }
netns_exists() { [ -e "/run/netns/$1" ]; }
link_exists() { ip link show dev "$1" >/dev/null 2>&1; }

need_root_and_ip() {
    [ "$(id -u)" = 0 ] || die 'needs root (network namespaces, links, /etc/hosts, daemons)'
    command -v ip >/dev/null ||
        die "needs iproute2's 'ip' (not on PATH): apt-get install iproute2"
    command -v unshare >/dev/null && command -v nsenter >/dev/null ||
        die "needs util-linux's 'unshare' and 'nsenter' (not on PATH)"
}

# ------------------------------------------------------------------ the hosts

hosts_up() {
    local node
    owns hosts || return 1
    link_exists "$BRIDGE" || return 1
    for node in "${NODES[@]}"; do
        netns_exists "$node" && ip -n "$node" -4 -o addr show dev eth0 2>/dev/null |
            grep -qF " $(node_addr "$node")/24" || return 1
        grep -qxF "$(node_addr "$node") $node $MARK" /etc/hosts || return 1
    done
}

check_no_clash() {  # nothing of the names and addresses we are about to take exists already
    local node name
    for node in "${NODES[@]}"; do
        if netns_exists "$node" && ! owns "netns $node"; then
            die "network namespace $node exists and was not made by this script; not touching it"
        fi
        if link_exists "$(node_veth "$node")" && ! owns "link $(node_veth "$node")"; then
            die "link $(node_veth "$node") exists and was not made by this script"
        fi
        # a name this script did not add: it would shadow (or be shadowed by) ours
        if grep -v -F "$MARK" /etc/hosts | grep -Eq "[[:space:]]$node([[:space:]]|\$)"; then
            die "/etc/hosts already names $node; not adding a second entry"
        fi
    done
    if link_exists "$BRIDGE" && ! owns "link $BRIDGE"; then
        die "link $BRIDGE exists and was not made by this script"
    fi
    name=$(ip -4 -o addr show | awk -v net="$SUBNET." 'index($4, net) == 1 {print $2}' | head -n1)
    if [ -n "$name" ] && ! owns "link $name"; then
        die "$SUBNET.0/24 is already used here (on $name); pick another with NETNS_CLUSTER_SUBNET"
    fi
}

reachable() {  # from namespace ($1, '' = root) to address $2: the host there refuses a TCP
    local prefix=()  # connection to a closed port (no ping needed)
    [ -n "$1" ] && prefix=(ip netns exec "$1")
    local i
    for i in $(seq 20); do  # a link that just came up may need a moment
        case $(timeout 3 "${prefix[@]}" bash -c "exec 3<>/dev/tcp/$2/9" 2>&1) in
            *'Connection refused'*) return 0 ;;
        esac
        sleep 0.25
    done
    return 1
}

make_hosts() {
    local node addr veth err
    check_no_clash
    own hosts
    if ! link_exists "$BRIDGE"; then
        own "link $BRIDGE"
        err=$(ip link add "$BRIDGE" type bridge 2>&1) ||
            die "cannot create a bridge ($err); the kernel needs bridge support"
    fi
    ip addr replace "$CTLD_ADDR/24" dev "$BRIDGE"
    ip link set "$BRIDGE" up
    for node in "${NODES[@]}"; do
        addr=$(node_addr "$node")
        veth=$(node_veth "$node")
        if ! netns_exists "$node"; then
            own "netns $node"
            err=$(ip netns add "$node" 2>&1) ||
                die "cannot create network namespace $node ($err): this kernel or container" \
                    "does not allow it (needs CAP_SYS_ADMIN)"
        fi
        if ! link_exists "$veth"; then
            own "link $veth"
            err=$(ip link add "$veth" type veth peer name eth0 netns "$node" 2>&1) ||
                die "cannot create a veth pair into $node ($err)"
        fi
        ip link set "$veth" master "$BRIDGE"
        ip link set "$veth" up
        ip -n "$node" addr replace "$addr/24" dev eth0
        ip -n "$node" link set lo up
        ip -n "$node" link set eth0 up
        if ! grep -qxF "$addr $node $MARK" /etc/hosts; then
            own "etc-hosts $node"
            # append in place: /etc/hosts is often a bind mount that cannot be replaced
            echo "$addr $node $MARK" >> /etc/hosts
        fi
    done
    # the link works both ways between the hosts and to the login node
    reachable "${NODES[1]}" "$(node_addr "${NODES[0]}")" &&
        reachable "${NODES[0]}" "$(node_addr "${NODES[1]}")" &&
        reachable '' "$(node_addr "${NODES[1]}")" ||
        die "the hosts cannot reach each other over $BRIDGE (a firewall? bridge netfilter?)"
}

remove_hosts_lines() {
    local kept
    grep -qF "$MARK" /etc/hosts 2>/dev/null || return 0
    kept=$(mktemp)
    grep -vF "$MARK" /etc/hosts > "$kept" || true
    cat "$kept" > /etc/hosts  # in place, see make_hosts
    rm -f "$kept"
}

kill_host_processes() {  # whatever still runs on a host we are about to remove
    local node=$1 pids
    netns_exists "$node" || return 0
    pids=$(ip netns pids "$node" 2>/dev/null | tr '\n' ' ')
    [ -n "${pids// }" ] || return 0
    log "killing what still runs on $node: pids $pids"
    # shellcheck disable=SC2086
    kill -9 $pids 2>/dev/null || true
    local i
    for i in $(seq 50); do
        [ -z "$(ip netns pids "$node" 2>/dev/null)" ] && return 0
        sleep 0.1
    done
    log "warning: processes still on $node: $(ip netns pids "$node" | tr '\n' ' ')"
}

remove_hosts() {
    local node veth failed=0
    for node in "${NODES[@]}"; do
        owns "netns $node" && kill_host_processes "$node"
    done
    remove_hosts_lines
    for node in "${NODES[@]}"; do
        veth=$(node_veth "$node")
        if owns "link $veth" && link_exists "$veth"; then
            ip link del "$veth" || { log "could not delete link $veth"; failed=1; }
        fi
        if owns "netns $node" && netns_exists "$node"; then
            ip netns del "$node" || { log "could not delete namespace $node"; failed=1; }
        fi
    done
    if owns "link $BRIDGE" && link_exists "$BRIDGE"; then
        ip link del "$BRIDGE" || { log "could not delete link $BRIDGE"; failed=1; }
    fi
    return $failed
}

# ---------------------------------------------------------------------- Slurm

exec_on() {  # HOST CMD...: in HOST's network namespace, with HOST as hostname
    local node=$1
    shift
    node_index "$node" >/dev/null
    netns_exists "$node" || die "host $node is not up (run: $0 start --no-slurm)"
    # nsenter, not `ip netns exec`: that remounts /sys, hiding the cgroup mounts slurmd needs
    exec nsenter --net="/run/netns/$node" unshare --uts -- \
        sh -c 'hostname "$0" && exec "$@"' "$node" "$@"
}

write_conf() {
    local node nodes
    nodes=$(IFS=,; echo "${NODES[*]}")
    cat <<EOF
# generated by mmconvarch .dev_scripts/cluster/netns_cluster.sh; removed by its stop
ClusterName=mmconvarch-netns
SlurmctldHost=localhost($CTLD_ADDR)
SlurmctldPort=$CTLD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
# no cgroups: works in containers and on machines without cgroup delegation
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/builtin
ReturnToService=2
SlurmdParameters=config_overrides
KillWait=5
InactiveLimit=0
MinJobAge=60
StateSaveLocation=$SPOOL/ctld
# one slurmd per host on one filesystem: %n (node name) keeps their files apart
SlurmdSpoolDir=$SPOOL/d-%n
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd-%n.pid
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd-%n.log
EOF
    for node in "${NODES[@]}"; do
        echo "NodeName=$node NodeAddr=$(node_addr "$node") CPUs=$NODE_CPUS State=UNKNOWN"
    done
    echo "PartitionName=$PARTITION Nodes=$nodes Default=YES MaxTime=INFINITE State=UP"
}

slurm_up() {
    local node
    [ -f "$CONF" ] && [ "$(write_conf)" = "$(cat "$CONF")" ] || return 1
    pid_alive "$STATE/slurmctld.pid" || return 1
    for node in "${NODES[@]}"; do
        pid_alive "$STATE/slurmd-$node.pid" || return 1
    done
}

log_tail() { [ -f "$1" ] && tail -n 5 "$1" | sed 's/^/    /' >&2 || true; }

wait_nodes_idle() {
    local i node state ready
    for i in $(seq 120); do
        ready=1
        for node in "${NODES[@]}"; do
            state=$(sinfo -h -N -n "$node" -o %t 2>/dev/null | head -n1)
            case "$state" in
                idle*|mix*|alloc*|comp*) ;;
                down*|drain*|drng*|fail*)
                    ready=0
                    scontrol update nodename="$node" state=resume >/dev/null 2>&1 || true ;;
                *) ready=0 ;;
            esac
            if ! pid_alive "$STATE/slurmd-$node.pid"; then
                log "slurmd on $node refused to run (log: $LOGS/slurmd-$node.log):"
                log_tail "$LOGS/slurmd-$node.log"
                die "slurmd on $node exited (see above; a kernel without per-namespace sockets?)"
            fi
        done
        [ "$ready" = 1 ] && return 0
        sleep 0.5
    done
    for node in "${NODES[@]}"; do
        log "$node: $(sinfo -h -N -n "$node" -o '%t %E' 2>&1 | head -n1); slurmd log:"
        log_tail "$LOGS/slurmd-$node.log"
    done
    die "the nodes did not become idle within 60 s (slurmctld log: $LOGS/slurmctld.log)"
}

start_slurm() {
    local node i
    install_packages
    install -d -m 0755 "$SPOOL/ctld" "$LOGS"
    for node in "${NODES[@]}"; do install -d -m 0755 "$SPOOL/d-$node"; done
    own spool
    munge_works || own munged
    start_munge
    if slurm_up; then
        wait_nodes_idle
        log "already running: Slurm on ${NODES[*]} (SLURM_CONF=$CONF)"
        return
    fi
    stop_slurm
    write_conf > "$CONF"
    own slurm
    # -c: start without the jobs of an earlier configuration
    slurmctld -c || die "slurmctld did not start"
    for i in $(seq 100); do
        if pid_alive "$STATE/slurmctld.pid"; then
            scontrol ping >/dev/null 2>&1 && break
        elif [ -s "$STATE/slurmctld.pid" ] || [ "$i" -gt 25 ]; then  # it daemonized, then died
            log "slurmctld exited (log: $LOGS/slurmctld.log):"
            log_tail "$LOGS/slurmctld.log"
            die "slurmctld refused to run (port $CTLD_PORT taken? set NETNS_CLUSTER_CTLD_PORT)"
        fi
        sleep 0.2
    done
    scontrol ping >/dev/null 2>&1 || {
        log_tail "$LOGS/slurmctld.log"
        die "slurmctld does not answer on $CTLD_ADDR:$CTLD_PORT"
    }
    for node in "${NODES[@]}"; do
        ( exec_on "$node" slurmd -N "$node" ) ||
            { log_tail "$LOGS/slurmd-$node.log"; die "slurmd on $node refused to start"; }
    done
    wait_nodes_idle
    log "running: Slurm across ${NODES[*]}, partition $PARTITION (SLURM_CONF=$CONF)"
}

stop_slurm() {
    local node
    for node in "${NODES[@]}"; do stop_pidfile "$STATE/slurmd-$node.pid"; done
    stop_pidfile "$STATE/slurmctld.pid"
}

stop_munge_if_ours() {
    owns munged || return 0
    # the one-host cluster (local_slurm.sh) may use it now: then it stays
    if pid_alive /run/slurm-local/slurmctld.pid || pid_alive /run/slurm-local/slurmd.pid; then
        log 'munged left running: other Slurm daemons on this machine use it'
        return 0
    fi
    stop_pidfile /run/munge/munged.pid
}

# -------------------------------------------------------------------- actions

start() {
    local with_slurm=1
    case "${1:-}" in
        '') ;;
        --no-slurm) with_slurm=0 ;;
        *) die "unknown start option '$1'; use --no-slurm or nothing" ;;
    esac
    need_root_and_ip
    install -d -m 0755 "$STATE"
    local hosts_were_up=0 slurm_was_up=0
    hosts_up && hosts_were_up=1
    slurm_up && slurm_was_up=1
    # a start that fails undoes what it did (not what an earlier start did)
    START_UNDO="$hosts_were_up $slurm_was_up"
    trap 'start_failed $?' EXIT
    trap 'exit 130' INT TERM
    if [ "$hosts_were_up" = 1 ]; then
        log "hosts already up: ${NODES[*]}"
    else
        make_hosts
        log "hosts up: ${NODES[0]} $(node_addr "${NODES[0]}"), ${NODES[1]}" \
            "$(node_addr "${NODES[1]}") (via $BRIDGE, login node $CTLD_ADDR)"
    fi
    [ "$with_slurm" = 1 ] && start_slurm
    trap - EXIT INT TERM
}

start_failed() {
    local rc=$1 hosts_were_up slurm_was_up
    [ "$rc" = 0 ] && return 0
    read -r hosts_were_up slurm_was_up <<< "$START_UNDO"
    log 'start failed: undoing what it did'
    if [ "$slurm_was_up" = 0 ]; then
        stop_slurm || true
    fi
    if [ "$hosts_were_up" = 0 ]; then
        teardown || true
    fi
    exit "$rc"
}

teardown() {  # everything in the owned list; the list itself last
    local failed=0
    [ -d "$STATE" ] || return 0
    stop_slurm || failed=1
    stop_munge_if_ours || failed=1
    remove_hosts || failed=1
    rm -rf "$SPOOL" "$STATE" || failed=1
    return $failed
}

stop() {
    need_root_and_ip
    if [ ! -d "$STATE" ]; then
        remove_hosts_lines  # a start killed before it wrote its state
        log 'not running (nothing to stop)'
        return 0
    fi
    teardown || die 'stopped, but some of it could not be removed (see above)'
    log 'stopped: hosts, links, /etc/hosts names and daemons removed'
}

status() {
    local node rc=1
    if hosts_up; then
        rc=3
        for node in "${NODES[@]}"; do
            echo "host $node: $(node_addr "$node") (netns $node, link $(node_veth "$node") $(
                cat "/sys/class/net/$(node_veth "$node")/operstate" 2>/dev/null || echo '?'))"
        done
        if slurm_up; then
            rc=0
            SLURM_CONF=$CONF sinfo -N
        else
            echo 'slurm: not running'
        fi
    else
        log 'not running'
    fi
    return $rc
}

export SLURM_CONF=$CONF
ACTION=${1:-}
[ $# -gt 0 ] && shift
case "$ACTION" in
    start) start "$@" ;;
    stop) stop ;;
    status) status ;;
    exec)
        [ $# -ge 2 ] || die 'usage: exec HOST CMD [ARGS...]'
        exec_on "$@" ;;
    link)
        [ $# = 2 ] && { [ "$2" = up ] || [ "$2" = down ]; } ||
            die 'usage: link HOST up|down'
        need_root_and_ip
        node_index "$1" >/dev/null
        hosts_up || die 'the hosts are not up'
        ip link set "$(node_veth "$1")" "$2" ;;
    *) die "unknown action '$ACTION'; use start [--no-slurm], stop, status, exec or link" ;;
esac
