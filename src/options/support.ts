// Options the engine cannot honour yet. They stay declared (so users' ik_llama.cpp command lines parse and the
// alias table keeps working) but are hidden from help and REFUSED when given on the command line or through the
// environment: a flag that is silently ignored would be a feature that exists only in --help.
import type { Command } from "commander";
import { IklError } from "../engine/errors.js";

/** Option attribute name → why it is refused. */
export const NOT_YET: Readonly<Record<string, string>> = {
    kvOffload: "-nkvo/--no-kv-offload is not implemented yet (this build keeps the KV cache and attention on the CPU anyway)",
    mergeQkv: "-mqkv/--merge-qkv is not implemented yet",
    mergeUpGateExperts: "-muge/--merge-up-gate-experts is not implemented yet"
};

/** Values of a refused option that the engine does support (the option is then accepted and shown). */
const SUPPORTED_VALUES: Readonly<Record<string, (v: unknown) => boolean>> = {};

/** Hide the not-yet-supported options of `cmd` from its help and refuse them when the user sets them. */
export function refuseUnsupported(cmd: Command): Command {
    const refused = (key: string): string | undefined => NOT_YET[key];
    for (const o of cmd.options) if (refused(o.attributeName()) !== undefined && !(o.attributeName() in SUPPORTED_VALUES)) o.hideHelp();
    cmd.hook("preAction", (_root, action) => {
        for (const o of action.options) {
            const key = o.attributeName();
            const why = refused(key);
            const source = action.getOptionValueSource(key);
            if (why !== undefined && (source === "cli" || source === "env") && SUPPORTED_VALUES[key]?.(action.getOptionValue(key)) !== true) {
                throw new IklError("IKL_E_UNSUPPORTED", `${why}; remove it from the command line`);
            }
        }
    });
    return cmd;
}
