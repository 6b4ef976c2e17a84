// Option value parsers: ranges, sizes, ratios, -ser, devices, tri-states and the -ot / --custom-q rule lists.
import { InvalidArgumentError } from "commander";
import { describe, expect, it } from "vitest";
import {
    floatInRange, intInRange, parseDevice, parseRatios, parseRegex, parseRuleList, parseSer, parseSize, parseTriState, splitTopLevel,
    collectPlacementRules
} from "../../src/options/parsers.js";

const bad = (fn: () => unknown): void => {
    expect(fn).toThrow(InvalidArgumentError);
};

describe("numbers", () => {
    it("integers with ranges", () => {
        const ctx = intInRange(0, 1 << 24);
        expect(ctx("4096")).toBe(4096);
        expect(ctx("0")).toBe(0);
        bad(() => ctx("-5"));
        bad(() => ctx("4k"));
        bad(() => ctx("1.5"));
        bad(() => intInRange(1, 4096)("0"));
        expect(() => intInRange(1, 4096)("0")).toThrow(/between 1 and 4096/);
    });
    it("floats with ranges", () => {
        expect(floatInRange(0, 1)("0.95")).toBe(0.95);
        bad(() => floatInRange(0, 1)("1.5"));
        bad(() => floatInRange(0, 1)("abc"));
        bad(() => floatInRange(0, 1)(""));
    });
});

describe("sizes, ratios, ser, devices, tri-states", () => {
    it("sizes", () => {
        expect(parseSize("24GiB")).toBe(24 * 1024 ** 3);
        expect(parseSize("1.5G")).toBe(1.5 * 1024 ** 3);
        expect(parseSize("500MB")).toBe(500e6);
        expect(parseSize("4096")).toBe(4096);
        expect(parseSize("512 mib")).toBe(512 * 1024 ** 2);
        bad(() => parseSize("24XB"));
        bad(() => parseSize("-1G"));
    });
    it("ratios", () => {
        expect(parseRatios("3,1")).toEqual([3, 1]);
        expect(parseRatios("1/1/2")).toEqual([1, 1, 2]);
        bad(() => parseRatios("0,0"));
        bad(() => parseRatios("3,-1"));
        bad(() => parseRatios("3,"));
    });
    it("-ser", () => {
        expect(parseSer("6,1.0")).toEqual({ kMin: 6, threshold: 1 });
        expect(parseSer("-1,0")).toEqual({ kMin: -1, threshold: 0 });
        bad(() => parseSer("6"));
        bad(() => parseSer("-2,1"));
    });
    it("devices", () => {
        expect(parseDevice("CPU")).toBe("CPU");
        expect(parseDevice("cuda1")).toBe("CUDA1");
        bad(() => parseDevice("GPU0"));
    });
    it("tri-states", () => {
        expect(parseTriState("on")).toBe("on");
        expect(parseTriState("0")).toBe("off");
        expect(parseTriState("auto")).toBe("auto");
        bad(() => parseTriState("maybe"));
    });
    it("regex", () => {
        expect(parseRegex("exps").test("blk.1.ffn_up_exps.weight")).toBe(true);
        bad(() => parseRegex("("));
    });
});

describe("rule lists", () => {
    it("splits on commas outside brackets", () => {
        expect(splitTopLevel("blk\\.(1|2)\\.ffn_.*_exps=CPU,exps{1,3}=CUDA0")).toEqual(["blk\\.(1|2)\\.ffn_.*_exps=CPU", "exps{1,3}=CUDA0"]);
        expect(splitTopLevel("[a,b]=CPU")).toEqual(["[a,b]=CPU"]);
    });
    it("parses REGEX=DEV rules on the last =", () => {
        const rules = parseRuleList("blk\\.(1|2)\\.ffn_.*_exps=CPU,exps{1,3}=cuda0", parseDevice);
        expect(rules.map((r) => [r.pattern.source, r.target])).toEqual([["blk\\.(1|2)\\.ffn_.*_exps", "CPU"], ["exps{1,3}", "CUDA0"]]);
        expect(rules[0]?.pattern.test("blk.2.ffn_up_exps.weight")).toBe(true);
        const eq = parseRuleList("a(?=b)=CPU", parseDevice);
        expect(eq[0]?.pattern.source).toBe("a(?=b)");
    });
    it("rejects bad rules", () => {
        bad(() => parseRuleList("exps", parseDevice));
        bad(() => parseRuleList("=CPU", parseDevice));
        bad(() => parseRuleList("exps=", parseDevice));
        bad(() => parseRuleList("a=CPU,,b=CPU", parseDevice));
        bad(() => parseRuleList("(=CPU", parseDevice));
        bad(() => parseRuleList("exps=GPU", parseDevice));
    });
    it("accumulates repeated -ot in order", () => {
        const first = collectPlacementRules("a=CPU", undefined);
        const both = collectPlacementRules("b=CUDA0,c=CUDA1", first);
        expect(both.map((r) => r.target)).toEqual(["CPU", "CUDA0", "CUDA1"]);
    });
});
