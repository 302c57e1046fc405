// Checks that a webhook came from your QR Bridge (the Standard Webhooks scheme), with Node's
// own crypto. `headers` are the request's headers (lower-case names), `body` the raw body text,
// exactly as received: parse the JSON only after this returns true.
import { createHmac, timingSafeEqual } from "node:crypto";
import { fileURLToPath } from "node:url";

export function verifyWebhook(secret, headers, body, toleranceSeconds = 300) {
  const id = headers["webhook-id"];
  const timestamp = headers["webhook-timestamp"];
  const signatures = headers["webhook-signature"];
  if (!id || !timestamp || !signatures) return false;
  // An old (or future) timestamp is a replay: refuse it.
  if (!(Math.abs(Date.now() / 1000 - Number(timestamp)) <= toleranceSeconds)) return false;
  const key = Buffer.from(secret.replace(/^whsec_/, ""), "base64");
  const expected = createHmac("sha256", key).update(`${id}.${timestamp}.${body}`).digest();
  return signatures.split(" ").some((signature) => {
    const [version, value] = signature.split(",");
    const given = Buffer.from(value ?? "", "base64");
    return version === "v1" && given.length === expected.length && timingSafeEqual(given, expected);
  });
}

// `node verify.mjs < {"secret":…,"headers":{…},"body":"…"}`: exits 0 when it verifies (the tests
// run the README's snippet this way).
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  let input = "";
  process.stdin.on("data", (chunk) => (input += chunk));
  process.stdin.on("end", () => {
    const { secret, headers, body } = JSON.parse(input);
    process.exit(verifyWebhook(secret, headers, body) ? 0 : 1);
  });
}
