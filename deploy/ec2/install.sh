#!/bin/bash
# Installs fleet on an EC2 instance from the unpacked bundle in /opt/fleet (bin/fleet and the
# repository's deploy/ folder), for the one worker /etc/fleet/instance.env names, and starts it
# with its drain helper. Run by the launch template's user data (deploy/cloudformation/
# fleet-ec2.json) at first boot; safe to run again after replacing the bundle.
#
# FLEET_BUNDLE (default /opt/fleet) and FLEET_INSTALL_ROOT (default /, for tests) move it.
set -euo pipefail

bundle="${FLEET_BUNDLE:-/opt/fleet}"
root="${FLEET_INSTALL_ROOT:-}"
# shellcheck source=/dev/null
. "$root/etc/fleet/instance.env"
: "${FLEET_WORKER:?FLEET_WORKER is not set in /etc/fleet/instance.env}"
: "${AWS_REGION:?AWS_REGION is not set in /etc/fleet/instance.env}"
case "$FLEET_WORKER" in
    orders | analytics | email) ;;
    *) echo "install.sh: unknown worker $FLEET_WORKER" >&2; exit 1 ;;
esac

install -d -m 0755 "$root/usr/local/bin" "$root/usr/local/libexec" "$root/etc/fleet" \
    "$root/etc/systemd/system/fleet.service.d"
install -m 0755 "$bundle/bin/fleet" "$root/usr/local/bin/fleet"
install -m 0755 "$bundle/deploy/ec2/fleet-drain.sh" "$root/usr/local/libexec/fleet-drain"
# The configuration the unit reads (--config /etc/fleet/fleet.toml): the repository's, with this
# instance's worker chosen below.
install -m 0644 "$bundle/deploy/fleet.toml" "$bundle/deploy/topology.toml" "$root/etc/fleet/"
rm -rf "$root/etc/fleet/templates"
cp -r "$bundle/deploy/templates" "$root/etc/fleet/templates"
install -m 0644 "$bundle/deploy/systemd/fleet.service" "$root/etc/systemd/system/fleet.service"
install -m 0644 "$bundle/deploy/ec2/fleet-drain.service" "$root/etc/systemd/system/fleet-drain.service"

# One worker per instance (its group scales on its own queue): the others are switched off
# through fleet's environment overrides, so the shipped fleet.toml stays unedited.
{
    echo "# Written by deploy/ec2/install.sh: this instance runs the $FLEET_WORKER worker only."
    echo "[Service]"
    echo "Environment=AWS_REGION=$AWS_REGION"
    for worker in orders analytics email; do
        enabled=false
        if [ "$worker" = "$FLEET_WORKER" ]; then enabled=true; fi
        echo "Environment=FLEET__${worker^^}__ENABLED=$enabled"
    done
} > "$root/etc/systemd/system/fleet.service.d/worker.conf"

systemctl daemon-reload
systemctl enable --now fleet.service fleet-drain.service
