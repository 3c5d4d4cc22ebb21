// Bundle the pinned @noble crypto into static/vendor/noble.js (one minified ES module).
//
// Usage: node build.mjs [--out DIR]   (npm run build; needs `npm ci` here first)
// The output is deterministic (pinned packages and esbuild, fixed options, no source paths),
// so that a rebuild is byte-identical and a test compares it with the committed bundle.
import { readFileSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const HERE = dirname(fileURLToPath(import.meta.url));
const PACKAGES = ["@noble/hashes", "@noble/curves", "esbuild"];

function parseArgs(argv) {
  let out = join(HERE, "static", "vendor");
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--out" && i + 1 < argv.length) {
      out = resolve(argv[++i]);
    } else {
      console.error(`usage: node build.mjs [--out DIR]; unexpected argument: ${argv[i]}`);
      process.exit(2);
    }
  }
  return { out };
}

function version(name) {
  const path = join(HERE, "node_modules", ...name.split("/"), "package.json");
  return JSON.parse(readFileSync(path, "utf8")).version;
}

const { out } = parseArgs(process.argv.slice(2));
const names = PACKAGES.map((name) => `${name} ${version(name)}`).join(", ");
const result = await build({
  entryPoints: [join(HERE, "vendor.js")],
  bundle: true,
  format: "esm",
  minify: true,
  target: "es2020",
  legalComments: "none",
  charset: "utf8",
  write: false,
  banner: {
    js: `// ${names} (MIT; github.com/paulmillr/noble-hashes, noble-curves).\n` +
      "// Built by provenance_api/web/build.mjs from the pinned packages; do not edit.",
  },
});
mkdirSync(out, { recursive: true });
writeFileSync(join(out, "noble.js"), result.outputFiles[0].contents);
