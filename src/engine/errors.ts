// IklError: the one error type commands throw, plus fromNative() that wraps errors raised by the Rust addon
// (JS Errors carrying a `code` such as IKL_E_GGUF). Deliberately no exit-code policy beyond the `kind`
// classification: src/cli.ts alone maps kinds to exit codes and prints.

/** How the CLI should treat an error: bad invocation, failed run, or a bug in ikl. */
export type ErrorKind = "usage" | "runtime" | "internal" | "interrupted";

/** Codes produced by TypeScript code; native codes (IKL_E_GGUF, IKL_E_IO, …) pass through unchanged. */
export const USAGE_CODE = "IKL_E_USAGE";
export const NATIVE_LOAD_CODE = "IKL_E_NATIVE";
export const INTERNAL_CODE = "IKL_E_INTERNAL";
/** The user pressed Ctrl-C; the command already printed what it produced. src/cli.ts exits 130 silently. */
export const INTERRUPTED_CODE = "IKL_E_INTERRUPTED";

export class IklError extends Error {
    readonly code: string;
    readonly hint: string | undefined;

    constructor(code: string, message: string, hint?: string, options?: { cause?: unknown }) {
        super(message, options);
        this.name = "IklError";
        this.code = code;
        this.hint = hint;
    }

    get kind(): ErrorKind {
        if (this.code === USAGE_CODE) return "usage";
        if (this.code === INTERNAL_CODE) return "internal";
        if (this.code === INTERRUPTED_CODE) return "interrupted";
        return "runtime";
    }
}

/** A usage error: wrong flag combination or value that commander itself could not detect. */
export function usageError(message: string, hint?: string): IklError {
    return new IklError(USAGE_CODE, message, hint);
}

function hasCode(e: unknown): e is Error & { code: string } {
    return e instanceof Error && typeof (e as { code?: unknown }).code === "string";
}

/** Wraps an error thrown or rejected by the addon; keeps the original as `cause` for --verbose. */
export function fromNative(e: unknown): IklError {
    if (e instanceof IklError) return e;
    if (hasCode(e) && e.code.startsWith("IKL_E_")) return new IklError(e.code, e.message, undefined, { cause: e });
    const message = e instanceof Error ? e.message : String(e);
    return new IklError(INTERNAL_CODE, `native addon failed: ${message}`, undefined, { cause: e });
}
