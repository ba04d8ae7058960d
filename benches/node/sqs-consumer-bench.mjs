// sqs-consumer as fleet-bench measures it: a no-op handler in handleMessage or
// handleMessageBatch mode, batches of 10, every other option at its default. It follows the
// protocol of fleet_benches::child: prints `ready` once its modules and client are loaded,
// consumes on `go` until it has handled (and deleted) -n messages, stops, prints its counts as
// one JSON line, and exits when stdin closes.
//
//   node sqs-consumer-bench.mjs --endpoint URL --queue-url URL -n N --mode message|batch

import { setMaxListeners } from "node:events";
import { createInterface } from "node:readline";
import { SQSClient } from "@aws-sdk/client-sqs";
import { Consumer } from "sqs-consumer";

function options(argv) {
  const o = {};
  for (let i = 2; i < argv.length; i += 2) o[argv[i].replace(/^-+/, "")] = argv[i + 1];
  for (const k of ["endpoint", "queue-url", "n", "mode"]) {
    if (!o[k]) throw new Error(`missing --${k}`);
  }
  return { endpoint: o.endpoint, queueUrl: o["queue-url"], n: Number(o.n), mode: o.mode };
}

const { endpoint, queueUrl, n, mode } = options(process.argv);
// sqs-consumer hangs one listener per request in flight on its AbortSignal (a receive and ten
// deletes in handleMessage mode), past Node's default warning threshold of 10.
setMaxListeners(32);
const sqs = new SQSClient({
  endpoint,
  region: "us-east-1",
  credentials: { accessKeyId: "fleet-bench", secretAccessKey: "fleet-bench" },
  // Requests go to the counting proxy, never to the host in the queue URL.
  useQueueUrlAsEndpoint: false,
});
const common = { queueUrl, sqs, batchSize: 10 };
// sqs-consumer 14 deletes what the handler returns: the message, or the batch.
const consumer = Consumer.create(
  mode === "batch"
    ? { ...common, handleMessageBatch: async (messages) => messages }
    : { ...common, handleMessage: async (message) => message },
);

let received = 0;
let handled = 0;
let stopping = false;
consumer.on("message_received", () => {
  received += 1;
});
consumer.on("message_processed", () => {
  handled += 1;
  if (handled === n && !stopping) {
    stopping = true;
    // Aborts the long poll on the wire; every delete of the n messages is done.
    consumer.stop({ abort: true });
  }
});
consumer.on("stopped", () => {
  process.stdout.write(`${JSON.stringify({ received, handled })}\n`);
});
for (const event of ["error", "processing_error", "timeout_error"]) {
  consumer.on(event, (err) => {
    if (!stopping) process.stderr.write(`sqs-consumer ${event}: ${err.message}\n`);
  });
}

let started = false;
const input = createInterface({ input: process.stdin });
input.on("line", (line) => {
  if (!started && line.trim() === "go") {
    started = true;
    consumer.start();
  }
});
input.on("close", () => process.exit(stopping ? 0 : 1));
process.stdout.write("ready\n");
