// Compile every src/*.sol with the pinned solc (npm) and write artifacts/<Name>.json.
//
// Usage: node build.mjs [--out DIR] [--test-out DIR]   (npm run build)
// Test-only contracts (../tests/contracts/*.sol, when that directory exists) are compiled in
// the same run into ../tests/contracts/artifacts (or --test-out), never into the package.
// The output is deterministic (fixed settings, stable key order, trailing newline), so that a
// rebuild is byte-identical and a test can compare it with the committed artifacts.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import solc from "solc";

const HERE = dirname(fileURLToPath(import.meta.url));
const SRC = join(HERE, "src");
const TEST_SRC = join(HERE, "..", "tests", "contracts");
const NODE_MODULES = join(HERE, "node_modules");

// prague: the default VM of eth-tester 0.14 (py-evm PragueVM) and supported by anvil 1.7;
// OpenZeppelin 5.x uses mcopy (cancun), so nothing older works.
const SETTINGS = {
  evmVersion: "prague",
  optimizer: { enabled: true, runs: 200 },
};

function parseArgs(argv) {
  let out = join(HERE, "artifacts");
  let testOut = join(TEST_SRC, "artifacts");
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--out" && i + 1 < argv.length) {
      out = resolve(argv[++i]);
    } else if (argv[i] === "--test-out" && i + 1 < argv.length) {
      testOut = resolve(argv[++i]);
    } else {
      console.error(`usage: node build.mjs [--out DIR] [--test-out DIR]; unexpected argument: ${argv[i]}`);
      process.exit(2);
    }
  }
  return { out, testOut };
}

function findImport(path) {
  // Only package imports are allowed, so that a build cannot read outside node_modules.
  if (!path.startsWith("@openzeppelin/contracts/") || path.includes("..")) {
    return { error: `import not allowed: ${path}` };
  }
  try {
    return { contents: readFileSync(join(NODE_MODULES, path), "utf8") };
  } catch (err) {
    return { error: `cannot read ${path}: ${err.message}` };
  }
}

function sourcesHash(names, texts) {
  const hash = createHash("sha256");
  for (const name of [...names].sort()) {
    hash.update(name, "utf8");
    hash.update("\0");
    hash.update(texts[name], "utf8");
    hash.update("\0");
  }
  return hash.digest("hex");
}

function main() {
  const { out, testOut } = parseArgs(process.argv.slice(2));
  const files = readdirSync(SRC).filter((f) => f.endsWith(".sol")).sort();
  if (files.length === 0) {
    console.error(`no .sol files in ${SRC}`);
    process.exit(1);
  }
  const sources = {};
  for (const f of files) sources[`src/${f}`] = { content: readFileSync(join(SRC, f), "utf8") };
  const testFiles = existsSync(TEST_SRC) ? readdirSync(TEST_SRC).filter((f) => f.endsWith(".sol")).sort() : [];
  for (const f of testFiles) sources[`test/${f}`] = { content: readFileSync(join(TEST_SRC, f), "utf8") };
  const input = {
    language: "Solidity",
    sources,
    settings: {
      ...SETTINGS,
      outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object", "metadata"] } },
    },
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImport }));
  const errors = (output.errors || []).filter((e) => e.severity === "error");
  for (const e of output.errors || []) console.error(e.formattedMessage);
  if (errors.length > 0) process.exit(1);

  const version = solc.version();
  for (const file of Object.keys(sources)) {
    const dir = file.startsWith("test/") ? testOut : out;
    mkdirSync(dir, { recursive: true });
    for (const [name, contract] of Object.entries(output.contracts[file] || {})) {
      if (!contract.evm.bytecode.object) continue; // interfaces and abstract contracts
      const metadata = JSON.parse(contract.metadata);
      const used = Object.keys(metadata.sources);
      const texts = {};
      for (const u of used) texts[u] = u in sources ? sources[u].content : findImport(u).contents;
      const artifact = {
        contractName: name,
        abi: contract.abi,
        bytecode: `0x${contract.evm.bytecode.object}`,
        deployedBytecode: `0x${contract.evm.deployedBytecode.object}`,
        compiler: { name: "solc", version, settings: SETTINGS },
        sourcesHash: sourcesHash(used, texts),
      };
      writeFileSync(join(dir, `${name}.json`), `${JSON.stringify(artifact, null, 2)}\n`);
      console.log(`${name}: ${join(dir, `${name}.json`)}`);
    }
  }
}

main();
