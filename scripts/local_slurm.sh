#!/usr/bin/env bash
# A single-node Slurm on localhost (munged + slurmctld + slurmd), for developing and testing the Slurm executor.
#
#   sudo scripts/local_slurm.sh start     # install slurm-wlm and munge with apt-get if missing, start the daemons
#   scripts/local_slurm.sh status         # sinfo and squeue of that cluster
#   sudo scripts/local_slurm.sh stop      # stop the daemons this script started
#   scripts/local_slurm.sh env            # the line to paste into a shell: export SLURM_CONF=…
#
# `start` is idempotent: with the cluster already up it only prints the environment. Its last line of output is
# always `SLURM_CONF=<path>` (what tests parse). Everything it writes lives under $LOCAL_SLURM_DIR
# (default /var/tmp/subnetworks-slurm): slurm.conf, state, spool, logs, pid files. It never overwrites an
# existing /etc/slurm/slurm.conf it did not write (a real cluster's); it links one there only where none exists.
#
# Options for start: --no-install (fail instead of running apt-get when the binaries are missing).
# Environment: LOCAL_SLURM_DIR, LOCAL_SLURM_PORT (slurmctld port, default 6817; slurmd uses the next one),
#              LOCAL_SLURM_CPUS (default: nproc).
set -euo pipefail

DIR=${LOCAL_SLURM_DIR:-/var/tmp/subnetworks-slurm}
CONF=$DIR/slurm.conf
PORT=${LOCAL_SLURM_PORT:-6817}
MARK="# written by subnetworks scripts/local_slurm.sh"
export SLURM_CONF=$CONF

say() { echo "local_slurm: $*" >&2; }
die() { say "$*"; exit 1; }

up() {  # the controller answers and the node takes jobs
    [[ -f $CONF ]] || return 1
    local state
    state=$(timeout 10 sinfo -h -o %T 2>/dev/null | head -1) || return 1
    [[ $state =~ ^(idle|mixed|allocated|completing) ]]
}

install_missing() {
    local missing=()
    for bin in slurmctld slurmd sbatch munged; do command -v "$bin" >/dev/null || missing+=("$bin"); done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    [[ ${1:-} == --no-install ]] && die "not installed: ${missing[*]} (apt-get install slurm-wlm munge, or run start without --no-install)"
    command -v apt-get >/dev/null || die "not installed: ${missing[*]}, and there is no apt-get to install slurm-wlm and munge"
    say "installing slurm-wlm and munge with apt-get"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
}

start_munge() {
    if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then return 0; fi
    if [[ ! -s /etc/munge/munge.key ]]; then
        say "creating /etc/munge/munge.key"
        mkdir -p /etc/munge
        if command -v mungekey >/dev/null; then mungekey --create --keyfile=/etc/munge/munge.key --force
        else dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null; fi
        chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
    fi
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge
    chmod 755 /run/munge
    runuser -u munge -- /usr/sbin/munged
    touch "$DIR/munged.started"
    for _ in $(seq 50); do
        munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    die "munged did not start (see /var/log/munge/munged.log)"
}

write_conf() {
    local host cpus mem
    host=$(hostname -s)
    cpus=${LOCAL_SLURM_CPUS:-$(nproc)}
    mem=$(awk '/MemTotal/ {printf "%d", $2 / 1024 * 0.9}' /proc/meminfo)
    mkdir -p "$DIR/state" "$DIR/spool" "$DIR/log"
    cat >"$CONF" <<EOF
$MARK: a single-node cluster on localhost
ClusterName=subnetworks-local
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# containers and CI machines: no cgroups, no accounting database (sacct is unavailable; squeue and scontrol work)
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerParameters=sched_interval=2
ReturnToService=2
JobRequeue=1
MinJobAge=600
KillWait=10
InactiveLimit=0
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
    if [[ ! -e /etc/slurm/slurm.conf ]] || grep -q "^$MARK" /etc/slurm/slurm.conf 2>/dev/null; then
        mkdir -p /etc/slurm
        ln -sfn "$CONF" /etc/slurm/slurm.conf
    fi
}

stop_pid() {  # the daemon whose pid file is $1, if it runs
    local file=$1 pid
    [[ -f $file ]] || return 0
    pid=$(cat "$file")
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
        kill "$pid"
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    fi
    rm -f "$file"
}

case ${1:-} in
start)
    if up; then
        say "already running"
    else
        [[ $(id -u) -eq 0 ]] || die "starting Slurm needs root (sudo $0 start)"
        install_missing "${2:-}"
        mkdir -p "$DIR"
        stop_pid "$DIR/slurmd.pid"
        stop_pid "$DIR/slurmctld.pid"
        write_conf
        start_munge
        slurmctld -f "$CONF"
        for _ in $(seq 50); do timeout 5 scontrol ping 2>/dev/null | grep -q UP && break; sleep 0.2; done
        slurmd -f "$CONF"
        for _ in $(seq 100); do up && break; sleep 0.3; done
        if ! up; then  # a node left down by an earlier run: resume it
            scontrol update nodename="$(hostname -s)" state=resume 2>/dev/null || true
            for _ in $(seq 30); do up && break; sleep 0.3; done
        fi
        up || die "Slurm did not come up: see $DIR/log/slurmctld.log and $DIR/log/slurmd.log"
        say "started: $(sinfo -h -o '%P %D %c %T' | head -1) (partition, nodes, cpus, state)"
    fi
    echo "SLURM_CONF=$CONF"
    ;;
stop)
    stop_pid "$DIR/slurmd.pid"
    stop_pid "$DIR/slurmctld.pid"
    if [[ -f $DIR/munged.started ]]; then
        stop_pid /run/munge/munged.pid
        rm -f "$DIR/munged.started"
    fi
    say "stopped"
    ;;
status)
    up || die "not running (sudo $0 start)"
    sinfo
    squeue
    ;;
env)
    echo "export SLURM_CONF=$CONF"
    ;;
*)
    sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
