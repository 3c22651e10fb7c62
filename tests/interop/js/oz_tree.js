// Reference behaviour of @openzeppelin/merkle-tree for veil's interop tests.
//   node oz_tree.js load TREE.json '[i,j,...]'   -> load (validates), root, proofs, multiproof
//   node oz_tree.js of VALUES.json OUT.json       -> StandardMerkleTree.of(values).dump()
//   node oz_tree.js verify CHECK.json             -> verify proofs/multiproofs made elsewhere
const fs = require("fs");
const { StandardMerkleTree } = require("@openzeppelin/merkle-tree");

const ENCODING = ["uint256", "bytes32", "uint256", "uint256"];
const [mode, a, b] = process.argv.slice(2);

if (mode === "load") {
  const dump = JSON.parse(fs.readFileSync(a, "utf8"));
  const tree = StandardMerkleTree.load(dump);
  const indices = JSON.parse(b || "[]");
  const proofs = indices.map((i) => ({ index: i, value: tree.at(i), proof: tree.getProof(i) }));
  const multi = indices.length ? tree.getMultiProof(indices) : null;
  console.log(JSON.stringify({ root: tree.root, length: tree.length, proofs, multiproof: multi }));
} else if (mode === "of") {
  const values = JSON.parse(fs.readFileSync(a, "utf8"));
  const started = process.hrtime.bigint();
  const tree = StandardMerkleTree.of(values, ENCODING);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (b) fs.writeFileSync(b, JSON.stringify(tree.dump()));
  console.log(JSON.stringify({ root: tree.root, length: tree.length, seconds }));
} else if (mode === "verify") {
  const check = JSON.parse(fs.readFileSync(a, "utf8"));
  const proofs = check.proofs.map((p) =>
    StandardMerkleTree.verify(check.root, ENCODING, p.value, p.proof),
  );
  const multi = check.multiproof
    ? StandardMerkleTree.verifyMultiProof(check.root, ENCODING, check.multiproof)
    : null;
  console.log(JSON.stringify({ proofs, multiproof: multi }));
} else {
  console.error("usage: oz_tree.js load|of|verify ...");
  process.exit(2);
}
