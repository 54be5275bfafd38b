# Shared by deploy/test-container and deploy/test-replicas (sourced, not
# run): timed steps and free loopback ports.
#
#   step_prefix="replicas: "     optional, before each step's title
#   step "name"                  ends the previous step, starts this one
#   step_end                     ends the current step
#   printf '%s\n' "${timings[@]}"   one line per step: name and seconds
#   port=$(free_port)            a TCP port on 127.0.0.1 free a moment ago

timings=()
step_start=0
step_prefix=${step_prefix:-}
step() {
  step_end
  step_name=$1
  step_start=$(date +%s%N)
  printf '\n==== %s%s (%s)\n' "$step_prefix" "$step_name" "$(date +%T)"
}
step_end() {
  if [[ $step_start != 0 ]]; then
    local tenths=$(( ($(date +%s%N) - step_start) / 100000000 ))
    timings+=("$(printf '%-48s %5d.%d s' "$step_name" $((tenths / 10)) $((tenths % 10)))")
  fi
  step_start=0
}
free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
