// Drives the ingress with Restate's own TypeScript client; prints one JSON object of observations.
// Usage: INGRESS_URL=http://host:port/ingress TOKEN=... node restate_client.mjs
import * as clients from "@restatedev/restate-sdk-clients";

const url = process.env.INGRESS_URL;
const rs = clients.connect({ url, headers: { Authorization: `Token ${process.env.TOKEN}` } });
const Recorder = { name: "Recorder" };
const out = {};

// With AWAKEABLE_RESOLVE and AWAKEABLE_REJECT (ids of awakeables the test's handlers wait for): complete them
// with the client's resolveAwakeable / rejectAwakeable, resolve one twice, and stop there.
if (process.env.AWAKEABLE_RESOLVE) {
  out.resolved = await failureOf(rs.resolveAwakeable(process.env.AWAKEABLE_RESOLVE, { approved: "js" }));
  out.rejected = await failureOf(rs.rejectAwakeable(process.env.AWAKEABLE_REJECT, "js says no"));
  out.resolvedTwice = await failureOf(rs.resolveAwakeable(process.env.AWAKEABLE_RESOLVE, { approved: "again" }));
  console.log(JSON.stringify(out));
  process.exit(0);
}

async function failureOf(promise) {
  try {
    await promise;
    return null;
  } catch (e) {
    return { status: e.status ?? null, body: e.responseText ?? String(e.message) };
  }
}

// An object client call of an exclusive handler, then a shared no-argument handler (empty JSON body).
out.callCount = await rs.objectClient(Recorder, "js-call").append({ value: "first" });
out.callItems = await rs.objectClient(Recorder, "js-call").items();

// A send with a delay: accepted at once, runs later.
const sentAt = Date.now();
const delayed = await rs.objectSendClient(Recorder, "js-delay").append({ value: "later" }, clients.rpc.sendOpts({ delay: 1500 }));
out.delayedSend = { status: delayed.status, invocationId: delayed.invocationId, tookMs: Date.now() - sentAt };

// An idempotent send, repeated, then result() attaches to the invocation.
const opts = clients.rpc.sendOpts({ idempotencyKey: "js-once" });
const first = await rs.objectSendClient(Recorder, "js-idem").append({ value: "once" }, opts);
const again = await rs.objectSendClient(Recorder, "js-idem").append({ value: "once" }, opts);
out.idempotent = { first: first.status, again: again.status, sameId: first.invocationId === again.invocationId };
out.idempotentResult = await rs.result(again);

// An unknown handler fails with 404.
out.unknownHandler = await failureOf(rs.objectClient(Recorder, "js-call").no_such_handler({}));

// A terminal error is not retried and carries its status.
out.terminal = await failureOf(rs.objectClient(Recorder, "js-call").refuse({ message: "nope", status: 422 }));

// A key holding a slash (and a space and Unicode), percent-encoded by the client.
const odd = "team/a b ключ";
out.oddKeyCount = await rs.objectClient(Recorder, odd).append({ value: "slash" });
out.oddKeyItems = await rs.objectClient(Recorder, odd).items();

// The delayed send ran after its delay.
await new Promise((resolve) => setTimeout(resolve, 2500));
out.delayedItems = await rs.objectClient(Recorder, "js-delay").items();

console.log(JSON.stringify(out));
