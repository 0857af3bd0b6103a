#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, for regulab's Slurm tests and for trying
# `regulab slurm` by hand. Needs Debian's slurmctld, slurmd, slurm-client and munge.
#
#   scripts/slurm-local.sh start  [DIR]  # write DIR/slurm.conf, start munged, slurmctld, slurmd
#   scripts/slurm-local.sh stop   [DIR]  # cancel the cluster's jobs, stop slurmd and slurmctld
#   scripts/slurm-local.sh status [DIR]  # the node and the queue
#   scripts/slurm-local.sh env    [DIR]  # print `export SLURM_CONF=DIR/slurm.conf`
#
# DIR (default: /tmp/regulab-slurm) holds the config, the controller's state, the
# node's spool and the logs (log/slurmctld.log, log/slurmd.log, and log/jobcomp.log:
# one line per finished job with its state and exit code). The regulab tests find the
# cluster through SLURM_CONF, or else in the default DIR.
#
# The node is this machine: its CPUs (nproc) and 95 % of its memory as slurmd measures
# it. The controller and the node listen on ports 16817 and 16818 (REGULAB_SLURM_PORT
# sets the first, the node takes the next), so that they do not clash with a real
# Slurm on the default ports. Run it as root (as CI does): the daemons run as root, and
# so do the jobs of root.
#
# What differs from a real cluster: there is no accounting database (slurmdbd), so
# `sacct` does not work here; `squeue` shows pending and running jobs, `scontrol show
# job ID` any job finished within the last hour (MinJobAge), and log/jobcomp.log every
# finished job. A requeued job waits AuthInfo's cred_expire (10 s here, 120 s by
# default) before it may start again.
set -euo pipefail

cmd=${1:-}
dir=${2:-/tmp/regulab-slurm}
conf="$dir/slurm.conf"
port=${REGULAB_SLURM_PORT:-16817}
export PATH="$PATH:/usr/sbin:/sbin"

die() { echo "slurm-local: $*" >&2; exit 1; }

need_tools() {
  for b in munge munged slurmctld slurmd sinfo squeue scontrol scancel sbatch; do
    command -v "$b" >/dev/null 2>&1 \
      || die "$b not found: apt-get install slurmctld slurmd slurm-client munge"
  done
}

# munge signs every Slurm message; one munged per machine serves any cluster on it.
start_munge() {
  munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return 0
  if [ ! -s /etc/munge/munge.key ]; then
    mungekey --create 2>/dev/null || create-munge-key -f
  fi
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown munge:munge /run/munge /var/log/munge /var/lib/munge /etc/munge/munge.key 2>/dev/null || true
  runuser -u munge -- munged 2>/dev/null || munged --force
  for _ in $(seq 50); do
    munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  die "munged did not start (see /var/log/munge/munged.log)"
}

write_conf() {
  local host cpus mem
  # the node's name is the one slurmd finds for itself
  host=$(slurmd -C | sed -n 's/^NodeName=\([^ ]*\).*/\1/p')
  [ -n "$host" ] || die "slurmd -C did not name this node"
  cpus=$(nproc)
  # RealMemory as slurmd measures it, less 5 % so the node is never "low memory"
  mem=$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')
  mem=$(( mem * 95 / 100 ))
  mkdir -p "$dir"/{state,spool,log}
  cat > "$conf.tmp" <<CONF
# Written by regulab's scripts/slurm-local.sh: a one-node cluster ($host), all state under
# $dir. Not for production: everything runs as root, nothing is accounted.
ClusterName=regulab-local
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
# requeued jobs may start again after 10 s (default 120 s)
AuthInfo=cred_expire=10
SlurmctldPort=$port
SlurmdPort=$((port + 1))
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
# processes tracked by parent id; no cgroups needed (containers, CI)
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/backfill
# CPUs are the resource handed out; memory is not enforced
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
# batch jobs may be requeued (sbatch --requeue, scontrol requeue)
JobRequeue=1
# seconds between SIGTERM and SIGKILL when a job is cancelled, requeued or times out
KillWait=10
# finished jobs stay visible to scontrol show job for an hour
MinJobAge=3600
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
# no slurmdbd (so no sacct): one line per finished job in this file instead
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/log/jobcomp.log
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
  mv "$conf.tmp" "$conf"
  echo "$host $cpus $mem"
}

# Stop the daemon whose pid file is DIR/$1.pid: SIGTERM, then SIGKILL after 10 s.
stop_daemon() {
  local pidfile="$dir/$1.pid" pid
  pid=$(cat "$pidfile" 2>/dev/null || true)
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "slurm-local: $1 (pid $pid) did not stop on SIGTERM; killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$pidfile"
}

stop() {
  if [ -s "$conf" ] && [ -s "$dir/slurmctld.pid" ]; then
    export SLURM_CONF="$conf"
    # the jobs first, so that no slurmstepd outlives the cluster
    local jobs
    jobs=$(squeue -h -o '%A' 2>/dev/null | sort -u | tr '\n' ' ' || true)
    if [ -n "${jobs// }" ]; then
      # shellcheck disable=SC2086
      scancel $jobs 2>/dev/null || true
      for _ in $(seq 150); do
        [ -z "$(squeue -h -o '%A' 2>/dev/null)" ] && break
        sleep 0.1
      done
    fi
  fi
  stop_daemon slurmd
  stop_daemon slurmctld
}

start() {
  need_tools
  [ "$(id -u)" = 0 ] || die "must run as root (the daemons need it)"
  start_munge
  stop
  local node
  node=$(write_conf)
  export SLURM_CONF="$conf"
  slurmctld -i -f "$conf"
  slurmd -f "$conf"
  for _ in $(seq 100); do
    if sinfo -h -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
      set -- $node
      echo "slurm-local: cluster up (node $1, $2 CPUs, $3 MB); export SLURM_CONF=$conf"
      return 0
    fi
    sleep 0.2
  done
  tail -n 20 "$dir/log/slurmctld.log" "$dir/log/slurmd.log" >&2 || true
  die "the node did not become idle within 20 s (logs above, in $dir/log)"
}

status() {
  [ -s "$conf" ] || die "no cluster in $dir (start it: $0 start $dir)"
  export SLURM_CONF="$conf"
  sinfo
  squeue
}

case "$cmd" in
  start) start ;;
  stop) stop; echo "slurm-local: stopped" ;;
  status) status ;;
  env) echo "export SLURM_CONF=$conf" ;;
  *) die "usage: $0 start|stop|status|env [DIR]" ;;
esac
