// Produces tests/cloud/vectors/envcrypt_js.json with @phala/dstack-sdk 0.5.8 (npm), the
// TypeScript SDK's own encryptEnvVars, with its two random draws pinned so the output is
// reproducible: the ephemeral X25519 private key and the 12-byte IV.
// Run: npm install @phala/dstack-sdk@0.5.8 && node make_js_vector.cjs > envcrypt_js.json
const { x25519 } = require("@noble/curves/ed25519");
const { encryptEnvVars } = require("@phala/dstack-sdk/encrypt-env-vars");

const hex = (b) => Buffer.from(b).toString("hex");
const fromHex = (h) => Uint8Array.from(Buffer.from(h, "hex"));

const recipientPrivate = "a0".repeat(16) + "0b".repeat(16);
const ephemeralPrivate = "11".repeat(8) + "22".repeat(8) + "33".repeat(8) + "44".repeat(8);
const iv = "000102030405060708090a0b";
const envs = [
  { key: "API_KEY", value: "sk-veil-test-123" },
  { key: "DATABASE_URL", value: "postgres://app:secret@db:5432/app" },
  { key: "GREETING", value: "héllo 世界 🌍" },
];

x25519.utils.randomPrivateKey = () => fromHex(ephemeralPrivate);
const realGetRandomValues = globalThis.crypto.getRandomValues.bind(globalThis.crypto);
globalThis.crypto.getRandomValues = (array) => {
  if (array.length === 12) { array.set(fromHex(iv)); return array; }
  return realGetRandomValues(array);
};

(async () => {
  const publicKey = hex(x25519.getPublicKey(fromHex(recipientPrivate)));
  const encrypted = await encryptEnvVars(envs, publicKey);
  const out = {
    source: "@phala/dstack-sdk 0.5.8 (npm) encryptEnvVars, node " + process.version +
      "; ephemeral key and IV pinned by tests/cloud/vectors/make_js_vector.cjs",
    recipient_private_key: recipientPrivate,
    recipient_public_key: publicKey,
    ephemeral_private_key: ephemeralPrivate,
    iv,
    env: envs,
    encrypted,
  };
  console.log(JSON.stringify(out, null, 2));
})();
