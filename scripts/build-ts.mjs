// Bundles src/cli.ts into dist/cli.js (ESM, node20). The native addon (*.node) stays outside the bundle and is
// loaded at run time relative to dist/cli.js (STYLE §1.4 rule 8); so is @resvg/resvg-js (native, PNG plots only,
// imported lazily by src/bench/plot.ts). The banner defines `require` so CommonJS
// dependencies bundled into the ESM output (cli-table3 and its deps) can still require Node built-ins.
import { build } from "esbuild";
import { readFileSync } from "node:fs";

const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));

await build({
    entryPoints: ["src/cli.ts"],
    outfile: "dist/cli.js",
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    external: ["*.node", "@resvg/resvg-js"],
    sourcemap: "linked",
    legalComments: "none",
    define: { IKL_VERSION: JSON.stringify(pkg.version) },
    banner: {
        js: 'import { createRequire as __iklCreateRequire } from "node:module"; const require = __iklCreateRequire(import.meta.url);'
    },
    logLevel: "warning"
});
