// `response_format: {"type": "json_object"}`: an incremental JSON syntax checker (RFC 8259) that the scheduler
// consults before it accepts a sampled token, so the reply is always a prefix of one JSON object and generation
// stops as soon as the object is complete. Like llama.cpp's grammar sampling, the sampled token is checked first
// and rejected tokens are re-drawn; nothing here looks at logits. Runs of whitespace outside strings are capped so
// a model cannot stall the reply with endless blank lines.

type Num = "sign" | "zero" | "int" | "dot" | "frac" | "e" | "esign" | "exp";
type State =
    | { k: "value" } // expecting any value
    | { k: "start" } // expecting the top-level '{'
    | { k: "key-or-end" } // after '{'
    | { k: "key" } // after ',' in an object
    | { k: "colon" }
    | { k: "value-or-end" } // after '['
    | { k: "after" } // after a value: ',' or a closing bracket
    | { k: "string"; key: boolean; esc: number } // esc: 0 none, 1 after a backslash, 6..3 = hex digits of \uXXXX still to come + 2
    | { k: "number"; n: Num }
    | { k: "literal"; rest: string }
    | { k: "done" };

const WS = new Set([" ", "\t", "\n", "\r"]);
const MAX_WS_RUN = 32;

export class JsonPrefix {
    private stack: string[] = [];
    private state: State = { k: "start" };
    private wsRun = 0;

    clone(): JsonPrefix {
        const c = new JsonPrefix();
        c.stack = [...this.stack];
        c.state = { ...this.state };
        c.wsRun = this.wsRun;
        return c;
    }

    get done(): boolean {
        return this.state.k === "done";
    }

    /** Feeds a whole piece of text; false (state undefined afterwards) when it cannot continue valid JSON. */
    pushText(text: string): boolean {
        for (const ch of text) if (!this.push(ch)) return false;
        return true;
    }

    private closeValue(): void {
        this.state = this.stack.length === 0 ? { k: "done" } : { k: "after" };
    }

    private beginValue(ch: string): boolean {
        if (ch === "{" || ch === "[") {
            this.stack.push(ch);
            this.state = ch === "{" ? { k: "key-or-end" } : { k: "value-or-end" };
        } else if (ch === '"') this.state = { k: "string", key: false, esc: 0 };
        else if (ch === "-") this.state = { k: "number", n: "sign" };
        else if (ch === "0") this.state = { k: "number", n: "zero" };
        else if (ch >= "1" && ch <= "9") this.state = { k: "number", n: "int" };
        else if (ch === "t" || ch === "f" || ch === "n") this.state = { k: "literal", rest: { t: "rue", f: "alse", n: "ull" }[ch] as string };
        else return false;
        return true;
    }

    private close(ch: string): boolean {
        const top = this.stack[this.stack.length - 1];
        if ((ch === "}" && top !== "{") || (ch === "]" && top !== "[")) return false;
        this.stack.pop();
        this.closeValue();
        return true;
    }

    private number(n: Num, ch: string): Num | "end" | undefined {
        const digit = ch >= "0" && ch <= "9";
        switch (n) {
            case "sign": return ch === "0" ? "zero" : digit ? "int" : undefined;
            case "zero": return ch === "." ? "dot" : ch === "e" || ch === "E" ? "e" : "end";
            case "int": return digit ? "int" : ch === "." ? "dot" : ch === "e" || ch === "E" ? "e" : "end";
            case "dot": return digit ? "frac" : undefined;
            case "frac": return digit ? "frac" : ch === "e" || ch === "E" ? "e" : "end";
            case "e": return ch === "+" || ch === "-" ? "esign" : digit ? "exp" : undefined;
            case "esign": return digit ? "exp" : undefined;
            case "exp": return digit ? "exp" : "end";
        }
    }

    push(ch: string): boolean {
        const s = this.state;
        if (s.k === "string") {
            if (s.esc === 1) s.esc = ch === "u" ? 6 : '"\\/bfnrt'.includes(ch) ? 0 : -1;
            else if (s.esc > 1) s.esc = /[0-9a-fA-F]/.test(ch) ? s.esc - 1 : -1;
            else if (ch === "\\") s.esc = 1;
            else if (ch === '"') {
                if (s.key) this.state = { k: "colon" };
                else this.closeValue();
            } else if (ch < " ") return false;
            if (s.esc === -1) return false;
            if (s.esc === 2) s.esc = 0; // fourth hex digit read
            return true;
        }
        if (s.k === "number") {
            const next = this.number(s.n, ch);
            if (next === undefined) return false;
            if (next !== "end") {
                s.n = next;
                return true;
            }
            this.closeValue();
            return this.push(ch);
        }
        if (s.k === "literal") {
            if (ch !== s.rest[0]) return false;
            s.rest = s.rest.slice(1);
            if (s.rest === "") this.closeValue();
            return true;
        }
        if (WS.has(ch)) return ++this.wsRun <= MAX_WS_RUN;
        this.wsRun = 0;
        switch (s.k) {
            case "start": return ch === "{" && this.beginValue(ch);
            case "value": return this.beginValue(ch);
            case "value-or-end": return ch === "]" ? this.close(ch) : this.beginValue(ch);
            case "key-or-end":
            case "key":
                if (ch === "}" && s.k === "key-or-end") return this.close(ch);
                if (ch !== '"') return false;
                this.state = { k: "string", key: true, esc: 0 };
                return true;
            case "colon":
                if (ch !== ":") return false;
                this.state = { k: "value" };
                return true;
            case "after":
                if (ch === ",") {
                    this.state = this.stack[this.stack.length - 1] === "{" ? { k: "key" } : { k: "value" };
                    return true;
                }
                return (ch === "}" || ch === "]") && this.close(ch);
            case "done": return false;
        }
    }
}
