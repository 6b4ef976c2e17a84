// Opt-in (IKL_MODELS_DIR set, e.g. `make models` output in .cache/models): every GGUF there — the large fixture
// models, quantized variants, real models — is read by `ikl gguf-dump` exactly as gguf-py reads it.
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "vitest";
import { expectSameAsGgufPy } from "../helpers/gguf-py.js";

const dir = process.env["IKL_MODELS_DIR"] ?? "";
const files = dir === "" ? [] : readdirSync(dir).filter((f) => f.endsWith(".gguf") && !/-0000[2-9]-of-/.test(f));

describe.skipIf(dir === "")("gguf-dump on the models in IKL_MODELS_DIR", () => {
    for (const f of files) {
        it(f, () => {
            expectSameAsGgufPy(join(dir, f));
        }, 600_000);
    }
});
