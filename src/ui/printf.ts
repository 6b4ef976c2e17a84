// C printf emulation for outputs that must match ik_llama.cpp byte for byte (llama-bench, sweep-bench, perplexity).
// Rounding is done on the exact binary value with ties-to-even, like glibc (JS toFixed rounds ties up), NaN prints
// as "-nan" (the x86 default NaN from invalid operations has its sign bit set) and widths count UTF-8 bytes.
// Supported: %d %i %u %s %f %F %e %g %c %% with flags "-+ 0#", width, precision and ignored length modifiers.

/** |x| = digits / 10^scale exactly (x finite). */
function exactDecimal(x: number): { neg: boolean; digits: bigint; scale: number } {
    const view = new DataView(new ArrayBuffer(8));
    view.setFloat64(0, x);
    const hi = view.getUint32(0);
    const lo = view.getUint32(4);
    const neg = (hi >>> 31) === 1;
    const bexp = (hi >>> 20) & 0x7ff;
    let mant = (BigInt(hi & 0xfffff) << 32n) | BigInt(lo);
    let e: number;
    if (bexp === 0) {
        e = -1074;
    } else {
        mant |= 1n << 52n;
        e = bexp - 1075;
    }
    if (e >= 0) return { neg, digits: mant << BigInt(e), scale: 0 };
    return { neg, digits: mant * 5n ** BigInt(-e), scale: -e };
}

/** round(digits / 10^(scale - places)) with ties to even. */
function roundTo(digits: bigint, scale: number, places: number): bigint {
    if (places >= scale) return digits * 10n ** BigInt(places - scale);
    const div = 10n ** BigInt(scale - places);
    const q = digits / div;
    const r = digits % div;
    const twice = r * 2n;
    if (twice > div || (twice === div && (q & 1n) === 1n)) return q + 1n;
    return q;
}

function withPoint(q: bigint, places: number, alt: boolean): string {
    let s = q.toString();
    if (places === 0) return alt ? `${s}.` : s;
    if (s.length <= places) s = "0".repeat(places - s.length + 1) + s;
    return `${s.slice(0, s.length - places)}.${s.slice(s.length - places)}`;
}

function special(x: number): string | undefined {
    if (Number.isNaN(x)) return "-nan";
    if (x === Infinity) return "inf";
    if (x === -Infinity) return "-inf";
    return undefined;
}

/** %.<prec>f without width/flags: fmtF(0.125, 2) === "0.12", fmtF(-0.001, 2) === "-0.00". */
export function fmtF(x: number, prec = 6, alt = false): string {
    const sp = special(x);
    if (sp !== undefined) return sp;
    const { neg, digits, scale } = exactDecimal(x);
    return (neg ? "-" : "") + withPoint(roundTo(digits, scale, prec), prec, alt);
}

/** Significant digits of |x| rounded to `sig` digits: value = 0.d1d2…×10^(exp+1), i.e. d1.d2… × 10^exp. */
function sigDigits(x: number, sig: number): { neg: boolean; ds: string; exp: number } {
    const { neg, digits, scale } = exactDecimal(x);
    if (digits === 0n) return { neg, ds: "0".repeat(sig), exp: 0 };
    const len = digits.toString().length;
    let exp = len - 1 - scale;
    let q = roundTo(digits, scale, sig - 1 - exp);
    if (q.toString().length > sig) {
        exp += 1;
        q = roundTo(digits, scale, sig - 1 - exp);
    }
    return { neg, ds: q.toString(), exp };
}

function expSuffix(exp: number): string {
    const a = Math.abs(exp);
    return `e${exp < 0 ? "-" : "+"}${a < 10 ? "0" : ""}${a}`;
}

/** %.<prec>e */
export function fmtE(x: number, prec = 6, alt = false): string {
    const sp = special(x);
    if (sp !== undefined) return sp;
    const { neg, ds, exp } = sigDigits(x, prec + 1);
    const mant = prec === 0 ? ds + (alt ? "." : "") : `${ds[0]}.${ds.slice(1)}`;
    return (neg ? "-" : "") + mant + expSuffix(exp);
}

/** %.<prec>g (also what C++ ostream << double prints with the default precision 6). */
export function fmtG(x: number, prec = 6, alt = false): string {
    const sp = special(x);
    if (sp !== undefined) return sp;
    const p = prec === 0 ? 1 : prec;
    const { neg, ds, exp } = sigDigits(x, p);
    const strip = (s: string): string => (alt || !s.includes(".") ? s : s.replace(/0+$/, "").replace(/\.$/, ""));
    let body: string;
    if (exp < -4 || exp >= p) {
        body = strip(p === 1 ? ds + (alt ? "." : "") : `${ds[0]}.${ds.slice(1)}`) + expSuffix(exp);
    } else {
        body = strip(fmtF(Math.abs(x), p - 1 - exp, alt));
    }
    return (neg ? "-" : "") + body;
}

const SPEC = /%([-+ 0#]*)(\*|\d+)?(?:\.(\*|\d*))?(hh|h|ll|l|L|z|j|t)?([diufFeEgGsc%])/g;

function pad(s: string, width: number, left: boolean, zero: boolean): string {
    const n = width - Buffer.byteLength(s, "utf8");
    if (n <= 0) return s;
    if (left) return s + " ".repeat(n);
    if (zero) {
        const sign = /^[-+ ]/.test(s) ? s.charAt(0) : "";
        return sign + "0".repeat(n) + s.slice(sign.length);
    }
    return " ".repeat(n) + s;
}

/** sprintf(fmt, ...args) with C semantics for the conversions listed in the header. */
export function sprintf(fmt: string, ...args: (number | bigint | string)[]): string {
    let ai = 0;
    const next = (): number | bigint | string => {
        if (ai >= args.length) throw new Error(`sprintf: missing argument for ${JSON.stringify(fmt)}`);
        return args[ai++] as number | bigint | string;
    };
    return fmt.replace(SPEC, (_m, flags: string, w: string | undefined, p: string | undefined, _len, conv: string) => {
        if (conv === "%") return "%";
        let width = w === "*" ? Number(next()) : w !== undefined ? Number(w) : 0;
        let left = flags.includes("-");
        if (width < 0) {
            left = true;
            width = -width;
        }
        const precArg = p === "*" ? Number(next()) : p !== undefined ? Number(p || "0") : undefined;
        const alt = flags.includes("#");
        const zero = flags.includes("0") && !left;
        const v = next();
        let s: string;
        switch (conv) {
            case "s":
                s = String(v);
                if (precArg !== undefined) s = s.slice(0, precArg);
                return pad(s, width, left, false);
            case "c":
                return pad(typeof v === "number" ? String.fromCharCode(v) : String(v), width, left, false);
            case "d":
            case "i":
            case "u":
                s = (typeof v === "bigint" ? v : BigInt(Math.trunc(Number(v)))).toString();
                break;
            case "f":
            case "F":
                s = fmtF(Number(v), precArg ?? 6, alt);
                break;
            case "e":
            case "E":
                s = fmtE(Number(v), precArg ?? 6, alt);
                break;
            default:
                s = fmtG(Number(v), precArg ?? 6, alt);
        }
        if (conv === "F" || conv === "E" || conv === "G") s = s.toUpperCase();
        const finite = !/nan|inf/i.test(s);
        if (!s.startsWith("-")) {
            if (flags.includes("+")) s = `+${s}`;
            else if (flags.includes(" ")) s = ` ${s}`;
        }
        return pad(s, width, left, zero && finite);
    });
}
