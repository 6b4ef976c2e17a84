// Root `ikl` program: rewrites ik-style legacy flags (options/legacy.ts), registers the subcommands, parses, and
// owns THE one catch that turns errors into a message and an exit code (0 ok, 1 runtime, 2 usage, 70 internal,
// 130 SIGINT). The only file that touches process.exit / process.exitCode. The native addon is loaded lazily by
// the engine on first use, so `ikl --help` and `ikl <cmd> --help` work without it. [changesets/shadcn index.ts]
import { Command, CommanderError, Help, Option } from "commander";
import { ggufDumpCommand } from "./commands/gguf-dump.js";
import { benchCommand } from "./commands/bench.js";
import { perplexityCommand } from "./commands/perplexity.js";
import { quantizeCommand } from "./commands/quantize.js";
import { runCommand } from "./commands/run.js";
import { serverCommand } from "./commands/server.js";
import { sweepBenchCommand } from "./commands/sweep-bench.js";
import { IklError } from "./engine/errors.js";
import { nativeAddonPath, systemInfo } from "./engine/index.js";
import { legacyAliasFor, rewriteLegacyArgs } from "./options/legacy.js";
import { configureColor, err } from "./ui/format.js";

declare const IKL_VERSION: string | undefined; // defined by scripts/build-ts.mjs from package.json
const VERSION = typeof IKL_VERSION === "string" ? IKL_VERSION : "0.0.0-dev";

/** Every working subcommand; adding one is one line here. */
const COMMANDS: (() => Command)[] = [runCommand, serverCommand, perplexityCommand, sweepBenchCommand, benchCommand, quantizeCommand, ggufDumpCommand];

const EXIT = { ok: 0, runtime: 1, usage: 2, internal: 70, sigint: 130 } as const;

/** Help shows the ik spelling next to the long flag ("-ngl, --n-gpu-layers N"). */
class IklHelp extends Help {
    override optionTerm(option: Option): string {
        const alias = option.long === undefined ? undefined : legacyAliasFor(option.long);
        const flags = option.flags.replace(/<([^>]+)>/g, "$1");
        return alias === undefined ? flags : `${alias}, ${flags}`;
    }
}

function configure(cmd: Command): Command {
    cmd.createHelp = () => Object.assign(new IklHelp(), cmd.configureHelp());
    cmd.exitOverride().configureOutput({
        writeErr: (s) => process.stderr.write(s),
        outputError: (s, write) => write(`${err.red(s.trim().replace(/\s*\n\s*/g, " "))}\n`)
    });
    for (const sub of cmd.commands) configure(sub);
    return cmd;
}

function versionText(): string {
    const lines = [`ikl ${VERSION}`];
    try {
        const info = systemInfo();
        lines.push(`native ${info.version} (ABI ${info.abiVersion}) ${info.arch}, CPU tier ${info.cpuTier}: ${info.cpuFeatures.join(" ")}, ${info.threads} threads`);
        const devs = info.cuda.devices.map((d) => `CUDA${d.index} ${d.name} (cc ${d.cc})`).join(", ");
        lines.push(info.cuda.available ? `CUDA: available: ${devs}` : `CUDA: not available${info.cuda.reason === undefined ? "" : ` (${info.cuda.reason})`}`);
    } catch (e) {
        const why = e instanceof IklError && e.hint !== undefined ? `${e.message} (${e.hint})` : e instanceof Error ? e.message : String(e);
        lines.push(`native addon unavailable: ${why}`);
    }
    return lines.join("\n");
}

export function buildProgram(): Command {
    const program = new Command("ikl")
        .description("Run quantized LLMs (llama, DeepSeek V2/V3/R1 with MLA) on CPU or CPU + CUDA, from GGUF files")
        .option("-V, --version", "print the ikl version and native build info (CPU tier, CUDA)")
        .option("--verbose", "on errors, print the stack and native cause")
        .option("--no-color", "no colours (also NO_COLOR=1, TERM=dumb, or output not a terminal)")
        .option("--color", "force colours (also FORCE_COLOR=1)")
        .addHelpText("after", `\nNative addon: ${nativeAddonPath()} (override with IKL_NATIVE)`);
    for (const make of COMMANDS) program.addCommand(make());
    program.allowExcessArguments(true).action((opts: { version?: boolean }) => {
        const unknown = program.args[0];
        if (unknown !== undefined) program.error(`error: unknown command '${unknown}' (see 'ikl --help')`, { code: "commander.unknownCommand" });
        if (opts.version !== true) program.help({ error: true });
        process.stdout.write(`${versionText()}\n`);
    });
    return configure(program);
}

function report(e: unknown, verbose: boolean): number {
    if (e instanceof CommanderError) {
        if (e.code === "commander.helpDisplayed" || e.code === "commander.version") return EXIT.ok;
        return EXIT.usage; // message already printed by outputError (or help, for a bare `ikl`)
    }
    const ikl = e instanceof IklError ? e : undefined;
    if (ikl?.kind === "interrupted") return EXIT.sigint; // the command already printed its partial output
    const message = e instanceof Error ? e.message : String(e);
    process.stderr.write(`${err.red(`error: ${message}`)}\n`);
    if (ikl?.hint !== undefined) process.stderr.write(`${err.dim(ikl.hint)}\n`);
    const internal = ikl === undefined || ikl.kind === "internal";
    if (internal) process.stderr.write(`${err.dim("this is a bug in ikl; please report it with the output of `ikl --version` and --verbose")}\n`);
    if (verbose && e instanceof Error) {
        process.stderr.write(`${err.dim(e.stack ?? "")}\n`);
        if (e.cause !== undefined) process.stderr.write(`${err.dim(`cause: ${e.cause instanceof Error ? (e.cause.stack ?? e.cause.message) : String(e.cause)}`)}\n`);
    }
    if (internal) return EXIT.internal;
    return ikl.kind === "usage" ? EXIT.usage : EXIT.runtime;
}

export async function main(rawArgv: readonly string[]): Promise<number> {
    configureColor(rawArgv);
    let argv: string[];
    try {
        argv = rewriteLegacyArgs(rawArgv);
        await buildProgram().parseAsync(argv, { from: "user" });
        return EXIT.ok;
    } catch (e) {
        return report(e, rawArgv.includes("--verbose"));
    }
}

process.once("SIGINT", () => {
    process.stderr.write("\ninterrupted\n");
    process.exit(EXIT.sigint);
});

process.exitCode = await main(process.argv.slice(2));
