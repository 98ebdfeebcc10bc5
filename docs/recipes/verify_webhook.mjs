// Verifies a Docket webhook (Standard Webhooks signature) with Node's own crypto module.
//
// Use `verify(secret, headers, body)` in your receiver, with the *raw* request body (a Buffer, as
// received, before any JSON parsing; in Express, `express.raw({ type: "application/json" })`).
// Run as a script, it reads `{"secret", "headers", "body"}` as JSON on standard input and prints
// `valid` or `invalid` (Docket's tests run it that way).
import { createHmac, timingSafeEqual } from "node:crypto";

const TOLERANCE_SECONDS = 5 * 60;

export function verify(secret, headers, body, now = Date.now() / 1000) {
  const id = headers["webhook-id"];
  const timestamp = headers["webhook-timestamp"];
  const signatures = headers["webhook-signature"];
  if (!id || !/^\d+$/.test(timestamp ?? "") || !signatures) return false;
  // A stale or future timestamp is refused, so a captured request cannot be replayed later.
  if (Math.abs(now - Number(timestamp)) > TOLERANCE_SECONDS) return false;
  const key = Buffer.from(secret.replace(/^whsec_/, ""), "base64");
  const expected = createHmac("sha256", key)
    .update(`${id}.${timestamp}.`)
    .update(body)
    .digest();
  // During the day after a rotation there are two signatures, one per secret.
  return signatures.split(" ").some((candidate) => {
    const [version, signature] = candidate.split(",", 2);
    const given = Buffer.from(signature ?? "", "base64");
    return version === "v1" && given.length === expected.length && timingSafeEqual(given, expected);
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  let input = "";
  process.stdin.setEncoding("utf8");
  process.stdin.on("data", (chunk) => { input += chunk; });
  process.stdin.on("end", () => {
    const request = JSON.parse(input);
    const headers = Object.fromEntries(
      Object.entries(request.headers).map(([name, value]) => [name.toLowerCase(), value]),
    );
    const ok = verify(request.secret, headers, Buffer.from(request.body, "utf8"));
    console.log(ok ? "valid" : "invalid");
    process.exit(ok ? 0 : 1);
  });
}
