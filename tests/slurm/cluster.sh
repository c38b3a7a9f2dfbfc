#!/usr/bin/env bash
# A one-node Slurm cluster on this machine for the tests (tests/test_slurm_cluster.py): Debian's
# slurmctld, slurmd and munge, the node named by `hostname -s` with 2 CPUs, one partition,
# accounting off. `.ci/run` installs and starts it before `make test` and stops it after; the
# tests' fixture starts it when the binaries are there. Runs as root (Slurm's daemons need it).
#   tests/slurm/cluster.sh install   apt-get the packages (once)
#   tests/slurm/cluster.sh start     write /etc/slurm/slurm.conf, start munged, slurmctld, slurmd
#   tests/slurm/cluster.sh stop      stop the daemons this script started (their pid files)
#   tests/slurm/cluster.sh status    exit 0 when the node answers idle or busy
set -euo pipefail
STATE=${KS_SLURM_STATE:-/var/tmp/ks-slurm}
CONF=/etc/slurm/slurm.conf
MARK="# written by kaggle_style tests/slurm/cluster.sh"
NODE=$(hostname -s)

say() { echo "slurm cluster: $*" >&2; }

node_up() {
  local state
  state=$(timeout 5 sinfo -h -N -n "$NODE" -o %T 2>/dev/null | head -n1) || return 1
  [[ $state =~ ^(idle|mixed|allocated|completing) ]]
}

write_conf() {
  if [[ -f $CONF ]] && ! grep -qF "$MARK" "$CONF"; then
    say "$CONF exists and is not ours: not touching it (move it away to use this script)"
    exit 2
  fi
  mkdir -p /etc/slurm "$STATE/ctld" "$STATE/spool"
  cat >"$CONF" <<CONF
$MARK
ClusterName=ks-test
SlurmctldHost=$NODE
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
SchedulerParameters=sched_min_interval=0
KillWait=5
MinJobAge=600
NodeName=$NODE CPUs=2 State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
CONF
}

start() {
  if node_up; then say "already up ($NODE)"; return 0; fi
  command -v slurmctld >/dev/null || { say "slurmctld not installed (tests/slurm/cluster.sh install)"; exit 2; }
  write_conf
  if ! pgrep -u munge -x munged >/dev/null; then
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge
    [[ -s /etc/munge/munge.key ]] || { /usr/sbin/mungekey --create --keyfile /etc/munge/munge.key \
      2>/dev/null || dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 2>/dev/null; }
    chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
    runuser -u munge -- /usr/sbin/munged --pid-file=/run/munge/munged.pid </dev/null >/dev/null \
      2>&1 9>&-
    cp /run/munge/munged.pid "$STATE/munged.pid"
  fi
  # the daemons must not inherit this script's lock (fd 9) or the caller's pipes
  [[ -f $STATE/slurmctld.pid ]] && kill -0 "$(cat "$STATE/slurmctld.pid")" 2>/dev/null ||
    /usr/sbin/slurmctld -i </dev/null >/dev/null 2>&1 9>&-
  [[ -f $STATE/slurmd.pid ]] && kill -0 "$(cat "$STATE/slurmd.pid")" 2>/dev/null ||
    /usr/sbin/slurmd </dev/null >/dev/null 2>&1 9>&-
  for _ in $(seq 60); do
    if node_up; then say "up: node $NODE, partition debug (state and logs in $STATE)"; return 0; fi
    sleep 0.5
  done
  say "the node did not come up idle; see $STATE/slurmctld.log and $STATE/slurmd.log"
  exit 1
}

stop() {
  local name pid
  for name in slurmd slurmctld munged; do
    [[ -f $STATE/$name.pid ]] || continue
    pid=$(cat "$STATE/$name.pid")
    if kill "$pid" 2>/dev/null; then
      for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    fi
    rm -f "$STATE/$name.pid"
  done
  say "stopped"
}

case "${1:-}" in
  install)
    command -v slurmctld >/dev/null && command -v sbatch >/dev/null && command -v munged >/dev/null ||
      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends slurmctld slurmd slurm-client munge; } ;;
  start) exec 9>/var/lock/ks-slurm.lock; flock 9; start ;;
  stop) exec 9>/var/lock/ks-slurm.lock; flock 9; stop ;;
  status) node_up ;;
  *) echo "usage: $0 install|start|stop|status" >&2; exit 2 ;;
esac
