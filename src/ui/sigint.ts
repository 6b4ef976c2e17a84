// Ctrl-C as an AbortSignal for commands that stop cleanly and print what they produced (run, bench, perplexity,
// sweep-bench): the first Ctrl-C aborts the signal; a second one reaches src/cli.ts's handler (exit 130 now).
import { IklError, INTERRUPTED_CODE } from "../engine/errors.js";

export async function withSigint<T>(fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const ac = new AbortController();
    const saved = process.listeners("SIGINT");
    process.removeAllListeners("SIGINT");
    const first = (): void => {
        ac.abort();
        for (const l of saved) process.once("SIGINT", l as () => void);
    };
    process.once("SIGINT", first);
    try {
        return await fn(ac.signal);
    } finally {
        if (!ac.signal.aborted) {
            process.removeListener("SIGINT", first);
            for (const l of saved) process.once("SIGINT", l as () => void);
        }
    }
}

/** True when `e` is the engine's cancellation (a decode stopped by an aborted signal). */
export function isCancelled(e: unknown): boolean {
    return e instanceof Error && (e as { code?: unknown }).code === "IKL_E_CANCELLED";
}

/** The error a command throws after printing its partial results: src/cli.ts exits 130 without a message. */
export function interrupted(what: string): IklError {
    return new IklError(INTERRUPTED_CODE, `${what} interrupted`);
}
