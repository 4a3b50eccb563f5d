#!/usr/bin/env bash
# A standalone ZooKeeper on loopback (Debian's zookeeper package) as the
# default store for the quick start: bash scripts/zookeeper.sh start|stop|status
# Data in /var/lib/swarmvol/zookeeper, log in /var/log/swarmvol-zookeeper.log.
set -euo pipefail
PORT=${ZK_PORT:-2181}
BASE=/var/lib/swarmvol/zookeeper
PIDFILE=$BASE/zookeeper.pid
LOG=/var/log/swarmvol-zookeeper.log

answers() {
  # srvr says "Mode:" only once the server serves clients.
  { exec 3<>"/dev/tcp/127.0.0.1/$PORT"; } 2>/dev/null || return 1
  printf srvr >&3
  grep -q '^Mode:' <&3
}

case "${1:-}" in
  start)
    if answers; then
      echo "zookeeper: already answering on 127.0.0.1:$PORT" >&2
      exit 0
    fi
    mkdir -p "$BASE/data"
    cat > "$BASE/zoo.cfg" <<CFG
tickTime=2000
dataDir=$BASE/data
clientPort=$PORT
clientPortAddress=127.0.0.1
4lw.commands.whitelist=srvr,mntr,ruok
admin.enableServer=false
CFG
    nohup java -Xmx1g -cp /etc/zookeeper/conf:/usr/share/java/zookeeper.jar \
      org.apache.zookeeper.server.quorum.QuorumPeerMain "$BASE/zoo.cfg" >>"$LOG" 2>&1 &
    echo $! > "$PIDFILE"
    for _ in $(seq 1 60); do
      if answers; then
        echo "zookeeper: started on 127.0.0.1:$PORT (log $LOG; stop: bash scripts/zookeeper.sh stop)" >&2
        exit 0
      fi
      sleep 0.5
    done
    echo "zookeeper: did not come up within 30 s; see $LOG" >&2
    exit 1
    ;;
  stop)
    if [ -f "$PIDFILE" ] && kill "$(cat "$PIDFILE")" 2>/dev/null; then
      rm -f "$PIDFILE"
      echo "zookeeper: stopped" >&2
    else
      echo "zookeeper: not running (started by this script)" >&2
    fi
    ;;
  status)
    if answers; then echo "zookeeper: answering on 127.0.0.1:$PORT"; else echo "zookeeper: not answering on 127.0.0.1:$PORT"; exit 3; fi
    ;;
  *)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
