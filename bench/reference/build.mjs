// Compile the OpenZeppelin reference contracts with solc-js (both from npm) into one JSON
// file of {name: {abi, bytecode}} on stdout. Run from the repo root: node bench/reference/build.mjs
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";

const require = createRequire(path.resolve("package.json"));
const solc = require("solc");
const here = path.dirname(new URL(import.meta.url).pathname);
const sources = {};
for (const file of fs.readdirSync(here).filter((f) => f.endsWith(".sol"))) {
  sources[file] = { content: fs.readFileSync(path.join(here, file), "utf8") };
}
const input = {
  language: "Solidity",
  sources,
  settings: {
    optimizer: { enabled: true, runs: 200 },
    evmVersion: "cancun",
    outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } },
  },
};
function findImports(name) {
  try {
    return { contents: fs.readFileSync(require.resolve(name), "utf8") };
  } catch (error) {
    return { error: `not found: ${name}` };
  }
}
const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));
const errors = (output.errors || []).filter((e) => e.severity === "error");
if (errors.length) {
  for (const e of errors) console.error(e.formattedMessage);
  process.exit(1);
}
const wanted = {
  ReferenceToken: 1,
  ReferenceVault: 1,
  ReferenceGovernor: 1,
  TimelockController: 1,
  ReferenceDistributor: 1,
  ReferenceMarket: 1,
};
const artifacts = { solc: solc.version(), contracts: {} };
for (const [file, contracts] of Object.entries(output.contracts)) {
  for (const [name, c] of Object.entries(contracts)) {
    if (wanted[name]) artifacts.contracts[name] = { abi: c.abi, bytecode: c.evm.bytecode.object };
  }
}
process.stdout.write(JSON.stringify(artifacts));
