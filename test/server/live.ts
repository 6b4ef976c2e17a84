// Live `ikl server` for tests: spawns bin/ikl.js server on an ephemeral port (--port 0), waits for its "ready:"
// line on stderr, and stops it with SIGTERM (the drain path), returning the exit code and the captured stderr.
import { spawn, type ChildProcess } from "node:child_process";
import { CLI } from "../helpers/paths.js";

export interface Live {
    url: string;
    proc: ChildProcess;
    stderr: () => string;
    stop: () => Promise<{ code: number | null; stderr: string }>;
}

export async function startServer(args: string[], timeoutMs = 60_000): Promise<Live> {
    const proc = spawn(process.execPath, [CLI, "server", "--port", "0", ...args], { env: { ...process.env, NO_COLOR: "1" }, stdio: ["ignore", "pipe", "pipe"] });
    let err = "";
    proc.stderr?.setEncoding("utf8");
    proc.stdout?.setEncoding("utf8");
    proc.stdout?.on("data", (d: string) => (err += d));
    const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`server did not start in ${timeoutMs} ms:\n${err}`)), timeoutMs);
        proc.stderr?.on("data", (d: string) => {
            err += d;
            const m = /server: ready: (http:\/\/\S+)/.exec(err);
            if (m !== null) {
                clearTimeout(timer);
                resolve(m[1] as string);
            }
        });
        proc.once("exit", (code) => {
            clearTimeout(timer);
            reject(new Error(`server exited with ${code} before it was ready:\n${err}`));
        });
    });
    const exited = new Promise<number | null>((r) => proc.once("exit", (code) => r(code)));
    return {
        url,
        proc,
        stderr: () => err,
        stop: async () => {
            if (proc.exitCode === null && !proc.killed) proc.kill("SIGTERM"); // once: a test may have sent it already
            const code = await exited;
            return { code, stderr: err };
        }
    };
}

export async function post(url: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: any; text: string; headers: Headers }> {
    const res = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json", ...headers }, body: typeof body === "string" ? body : JSON.stringify(body) });
    const text = await res.text();
    let json: any;
    try {
        json = JSON.parse(text);
    } catch {
        json = undefined;
    }
    return { status: res.status, json, text, headers: res.headers };
}

export async function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; json: any; text: string; headers: Headers }> {
    const res = await fetch(url, { headers });
    const text = await res.text();
    let json: any;
    try {
        json = JSON.parse(text);
    } catch {
        json = undefined;
    }
    return { status: res.status, json, text, headers: res.headers };
}

/** Polls until `fn` returns true or the time is up. */
export async function until(fn: () => Promise<boolean>, ms = 10_000): Promise<boolean> {
    const end = Date.now() + ms;
    while (Date.now() < end) {
        if (await fn()) return true;
        await new Promise((r) => setTimeout(r, 50));
    }
    return false;
}
