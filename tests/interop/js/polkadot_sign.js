// Signatures exactly as polkadot.js wallets make them, for veil's binding interop tests.
//   node polkadot_sign.js INPUT.json
// INPUT: {message: "...", seeds: {sr25519: "0x..", ed25519: "0x..", ecdsa: "0x.."},
//         verify: [{scheme, address, signature, message}]   (signatures made by veil)}
// Prints, per scheme: address (SS58 prefix 30), public key, a signature over the bare
// message and one over the <Bytes>-wrapped message (what signRaw signs), and
// signatureVerify's answer for each signature veil produced.
const fs = require("fs");
const { Keyring } = require("@polkadot/keyring");
const { cryptoWaitReady, signatureVerify } = require("@polkadot/util-crypto");
const { hexToU8a, stringToU8a, u8aToHex, u8aWrapBytes } = require("@polkadot/util");

async function main() {
  await cryptoWaitReady();
  const input = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
  const message = stringToU8a(input.message);
  const out = { keys: {}, verified: [] };
  for (const [scheme, seed] of Object.entries(input.seeds || {})) {
    const keyring = new Keyring({ type: scheme, ss58Format: 30 });
    const pair = keyring.addFromSeed(hexToU8a(seed));
    out.keys[scheme] = {
      address: pair.address,
      publicKey: u8aToHex(pair.publicKey),
      bare: u8aToHex(pair.sign(message)),
      wrapped: u8aToHex(pair.sign(u8aWrapBytes(message))),
    };
  }
  for (const item of input.verify || []) {
    const result = signatureVerify(stringToU8a(item.message), item.signature, item.address);
    out.verified.push({ isValid: result.isValid, crypto: result.crypto });
  }
  console.log(JSON.stringify(out));
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
