#!/bin/bash
# Completes this instance's Auto Scaling termination lifecycle hook once fleet has drained.
#
# The group holds a terminating instance in Terminating:Wait (the hook "fleet-drain" of
# deploy/cloudformation/fleet-ec2.json). This script polls the instance metadata for the
# instance's target lifecycle state; at "Terminated" it stops fleet.service, which sends SIGTERM
# and waits for fleet's drain (TimeoutStopSec is longer than it), then tells the group to go on.
# Nothing else touches the instance during the drain, so scale-in never kills a busy worker.
#
# Environment (from /etc/fleet/instance.env, written by the launch template's user data):
#   FLEET_ASG             the Auto Scaling group's name
#   FLEET_LIFECYCLE_HOOK  the hook's name
#   AWS_REGION            the region
#   FLEET_IMDS            the metadata endpoint (default http://169.254.169.254; tests change it)
#   FLEET_DRAIN_POLL      seconds between polls (default 5)
set -euo pipefail

imds="${FLEET_IMDS:-http://169.254.169.254}"
poll="${FLEET_DRAIN_POLL:-5}"
: "${FLEET_ASG:?FLEET_ASG is not set (see /etc/fleet/instance.env)}"
: "${FLEET_LIFECYCLE_HOOK:?FLEET_LIFECYCLE_HOOK is not set}"
: "${AWS_REGION:?AWS_REGION is not set}"

# IMDSv2 only (the launch template requires tokens): a fresh token for each read.
metadata() {
    local token
    token=$(curl --fail --silent --max-time 2 --request PUT "$imds/latest/api/token" \
        --header "X-aws-ec2-metadata-token-ttl-seconds: 60")
    curl --fail --silent --max-time 2 --header "X-aws-ec2-metadata-token: $token" \
        "$imds/latest/meta-data/$1"
}

instance=""
until instance=$(metadata instance-id); do
    sleep "$poll"
done

# The state is absent until the group has placed the instance; a failed read is retried.
while true; do
    state=$(metadata autoscaling/target-lifecycle-state || echo unknown)
    if [ "$state" = "Terminated" ]; then
        break
    fi
    sleep "$poll"
done

echo "fleet-drain: $instance is terminating; stopping fleet.service (it drains)"
started=$(date +%s)
systemctl stop fleet.service || echo "fleet-drain: systemctl stop failed; completing anyway"
echo "fleet-drain: fleet stopped after $(( $(date +%s) - started )) s; completing the lifecycle action"

# A refused call is retried: without it the instance waits for the hook's heartbeat timeout.
for attempt in 1 2 3 4 5; do
    if aws autoscaling complete-lifecycle-action \
        --region "$AWS_REGION" \
        --auto-scaling-group-name "$FLEET_ASG" \
        --lifecycle-hook-name "$FLEET_LIFECYCLE_HOOK" \
        --instance-id "$instance" \
        --lifecycle-action-result CONTINUE; then
        echo "fleet-drain: lifecycle action completed"
        exit 0
    fi
    echo "fleet-drain: complete-lifecycle-action failed (attempt $attempt); retrying"
    sleep "$attempt"
done
echo "fleet-drain: could not complete the lifecycle action; the instance terminates at the heartbeat timeout" >&2
exit 1
