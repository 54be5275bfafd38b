# Shell helpers shared by the scripts that start a real server on loopback
# (scripts/soak, scripts/fault-kill9, bench/search_compare.sh,
# bench/memory_compare.sh). Source it; it defines functions only.

# wait_serving PID CLIENT_COMMAND...
# Waits (up to 120 s) until `CLIENT_COMMAND health` reports SERVING. Exits
# the script with a message if the server process PID dies or never serves.
wait_serving() {
  local pid=$1
  shift
  for _ in $(seq 1200); do
    "$@" health >/dev/null 2>&1 && return 0
    kill -0 "$pid" 2>/dev/null || { echo "FAIL: the server (pid $pid) exited" >&2; exit 1; }
    sleep 0.1
  done
  echo "FAIL: the server did not become SERVING in 120 s" >&2
  exit 1
}

# make_tiny_bundle TRAINER DIR
# Trains a small real bundle into DIR/bundle: one epoch on 1200
# Fashion-MNIST images (about 10 s on 2 cores).
make_tiny_bundle() {
  "$1" --epochs 1 --train_limit 1200 --test_limit 200 --quiet \
    --out "$2/bundle" --work_dir "$2/work" >/dev/null
}
