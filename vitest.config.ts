// vitest configuration: every suite under test/ (unit suites need no native addon; `vitest run test/unit` runs
// only those). vitest requires the config as the default export, the one exception to the no-default-export rule.
import { defineConfig } from "vitest/config";

export default defineConfig({
    test: {
        include: ["test/**/*.test.ts"],
        environment: "node",
        pool: "forks",
        maxWorkers: 2
    }
});
