// The incremental JSON checker behind response_format json_object (pure, no addon): valid prefixes, complete
// objects, and the inputs it must refuse.
import { describe, expect, it } from "vitest";
import { JsonPrefix } from "../../src/server/json-mode.js";

function verdict(text: string): "done" | "prefix" | "bad" {
    const j = new JsonPrefix();
    if (!j.pushText(text)) return "bad";
    return j.done ? "done" : "prefix";
}

describe("JsonPrefix", () => {
    it.each([
        ['{"a": 1}', "done"],
        [' {"a":[1,2.5e-3,true,null,"x\\u00e9\\n"],"b":{}}', "done"],
        ["{}", "done"],
        ['{"a":-0.5E+2}', "done"],
        ['{"a"', "prefix"],
        ['{"a":tru', "prefix"],
        ['{"a":"\\u00', "prefix"],
        ['{"a":12', "prefix"],
        ['{"a":}', "bad"],
        ["[1]", "bad"],
        ['{"a":01}', "bad"],
        ['{"a":"b\\q"}', "bad"],
        ['{"a":1}}', "bad"],
        ['{"a":"\\u00g0"}', "bad"],
        ['{"a":"line\nbreak"}', "bad"],
        ['{"a" 1}', "bad"],
        ['{"a":1,}', "bad"],
        ["x", "bad"],
        [`{${" ".repeat(40)}`, "bad"]
    ])("%j → %s", (text, want) => expect(verdict(text)).toBe(want));

    it("clones are independent", () => {
        const j = new JsonPrefix();
        j.pushText('{"k":');
        const c = j.clone();
        expect(c.pushText("[1]}")).toBe(true);
        expect(c.done).toBe(true);
        expect(j.done).toBe(false);
        expect(j.pushText('"v"}')).toBe(true);
        expect(j.done).toBe(true);
    });
});
