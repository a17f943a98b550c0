// Verifies every delivery in webhook-receiver's log with npm's `standardwebhooks`, the
// Standard Webhooks reference library for JavaScript (pinned in package.json).
//
//   WEBHOOK_SECRET=whsec_... node tests/outbound/verify.mjs LOG_FILE
//
// Prints one JSON line: {"verified": N, "failed": [ids], "late": [ids], "errors": {id: why}}.
// "late" names failed lines received more than 5 minutes ago: the library measures the
// timestamp against the clock now, so verify promptly after receipt. Exits 1 when a line
// fails or the file has none, 2 on wrong usage.
import { readFileSync } from "node:fs";
import { Webhook } from "standardwebhooks";

const TOLERANCE_MS = 5 * 60 * 1000;
const [logFile] = process.argv.slice(2);
const secret = process.env.WEBHOOK_SECRET;
if (!logFile || !secret) {
  console.error("usage: WEBHOOK_SECRET=whsec_... node verify.mjs LOG_FILE");
  process.exit(2);
}

let webhook;
try {
  webhook = new Webhook(secret);
} catch (e) {
  console.error(`verify.mjs: unusable WEBHOOK_SECRET: ${e.message}`);
  process.exit(2);
}

let text;
try {
  text = readFileSync(logFile, "utf8");
} catch (e) {
  console.error(`verify.mjs: cannot read ${logFile}: ${e.message}`);
  text = "";
}
const lines = text.split("\n").filter((line) => line.trim() !== "");
const summary = { verified: 0, failed: [], late: [], errors: {} };

lines.forEach((line, index) => {
  let name = `line ${index + 1}`;
  const fail = (why) => {
    summary.failed.push(name);
    summary.errors[name] = why;
    console.error(`verify.mjs: ${name}: ${why}`);
  };
  let entry;
  try {
    entry = JSON.parse(line);
  } catch (e) {
    fail(`not JSON: ${e.message}`);
    return;
  }
  if (typeof entry.id === "string") name = entry.id;
  const headers = {};
  for (const [header, field] of [
    ["webhook-id", "id"],
    ["webhook-timestamp", "timestamp"],
    ["webhook-signature", "signature"],
  ]) {
    if (typeof entry[field] === "string") headers[header] = entry[field];
  }
  try {
    webhook.verify(String(entry.body ?? ""), headers);
    summary.verified += 1;
  } catch (e) {
    const age = Date.now() - Number(entry.received_at);
    if (age > TOLERANCE_MS) {
      summary.late.push(name);
      fail(
        `${e.message} (received ${Math.round(age / 1000)} s ago, beyond the 5-minute ` +
          "tolerance the library measures against now: verify promptly after receipt)",
      );
    } else {
      fail(e.message);
    }
  }
});

if (lines.length === 0) console.error(`verify.mjs: no delivery in ${logFile}`);
console.log(JSON.stringify(summary));
process.exit(lines.length > 0 && summary.failed.length === 0 ? 0 : 1);
