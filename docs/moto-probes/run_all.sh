#!/bin/bash
# Re-run all probes against a running moto_server (MOTO_PORT, default 57689), with the repository's
# test venv (./scripts/test creates it). Outputs go to $OUT (default ./out). SKIP_SLOW=1 skips the
# 62 s retention probe.
set -u
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
OUT=${OUT:-$here/out}
mkdir -p "$OUT"
PY=${PY:-$here/../../.venv/bin/python}
for s in q01_stale_receipt q02_change_visibility q03_receive q04_redrive q05_fifo q06_batch_limits q07_attributes q09_msg_attrs q10_purge q11_sns_delivery q11b_raw_binary q12_filters q13_publish_batch q14_fifo_topic q15_subscriptions q16_queue_policy q17_misc; do
  echo "== $s"; "$PY" $s.py > "$OUT/$s.out" 2>&1 || echo "   (exit $?)"
done
./raw_wire.sh > "$OUT/raw_wire.out" 2>&1
[ -z "${SKIP_SLOW:-}" ] && { echo "== q08_retention (62 s)"; "$PY" q08_retention.py > "$OUT/q08_retention.out" 2>&1; }
echo done
