#!/usr/bin/env bash
# A real single-node Slurm cluster on this machine (Debian slurm-wlm + munge), for the test that runs
# `dialogpt-build-dataset --executor slurm` for real (tests/dataset/test_slurm_executor.py).
#
#   .ci/slurm_single_node.sh install   # apt-get install slurm-wlm munge (root; once)
#   .ci/slurm_single_node.sh start     # munged + slurmctld + slurmd, partition "debug" (idempotent)
#   .ci/slurm_single_node.sh status    # exit 0 when a node is idle/mixed/allocated
#   .ci/slurm_single_node.sh stop      # stop the three daemons by their PIDs
#
# Setup as in ../shared/reference/slurm-single-node.md; RealMemory is sized from this machine
# (the executor asks 4G per CPU by default).
set -euo pipefail

PIDS=/run/dialogpt-slurm.pids

install() {
  if command -v sbatch >/dev/null && command -v slurmctld >/dev/null && command -v munged >/dev/null; then
    return 0
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
}

ready() {
  timeout 10 sinfo -h -o '%t' 2>/dev/null | grep -qE '^(idle|mix|alloc)'
}

start() {
  command -v slurmctld >/dev/null || { echo "slurm not installed (run: $0 install)" >&2; exit 1; }
  if ready; then echo "slurm already running"; return 0; fi
  local host mem
  host=$(hostname -s)
  mem=$(awk '/MemTotal/ {print int($2 / 1024 * 0.8)}' /proc/meminfo)
  mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/munge /etc/munge
  [ -f /etc/munge/munge.key ] || dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
  chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge
  chmod 400 /etc/munge/munge.key
  pgrep -x munged >/dev/null || runuser -u munge -- /usr/sbin/munged --force
  cat > /etc/slurm/slurm.conf <<EOF
ClusterName=local
SlurmctldHost=$host
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
NodeName=$host CPUs=$(nproc) RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
  pgrep -x slurmctld >/dev/null || /usr/sbin/slurmctld
  pgrep -x slurmd >/dev/null || /usr/sbin/slurmd
  for _ in $(seq 1 30); do
    if ready; then
      pgrep -x munged > "$PIDS"; pgrep -x slurmctld >> "$PIDS"; pgrep -x slurmd >> "$PIDS"
      sinfo
      return 0
    fi
    sleep 1
  done
  echo "slurm did not come up in 30 s; see /var/log/slurm/" >&2
  exit 1
}

stop() {
  [ -f "$PIDS" ] || return 0
  while read -r pid; do kill "$pid" 2>/dev/null || true; done < "$PIDS"
  rm -f "$PIDS"
}

case "${1:-start}" in
  install) install ;;
  start) start ;;
  status) ready ;;
  stop) stop ;;
  *) echo "usage: $0 install|start|status|stop" >&2; exit 2 ;;
esac
