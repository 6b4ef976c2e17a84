// Placement preview options (`--print-placement`, `--dry-run`, `--json`, `--devices`, `--ram`), declared once and
// attached with withOffloadOptions(cmd) next to the -ngl/-ot group of options/model.ts. The plan itself is made by
// engine/placement.ts; `--devices "CUDA0=24GiB,CUDA1=24GiB" --ram 256GiB` plans for another machine offline.
import { Command, InvalidArgumentError, Option } from "commander";
import { attachGroup } from "./attach.js";
import { parseDevice, parseSize } from "./parsers.js";
import type { OffloadOptions } from "../engine/placement-open.js";
import type { PlacementDevice } from "../engine/placement.js";

/** "CUDA0=24GiB,CUDA1=24GiB" → devices with their (free) memory. */
export function parseDeviceSizes(value: string): PlacementDevice[] {
    const out: PlacementDevice[] = [];
    for (const item of value.split(",")) {
        const eq = item.indexOf("=");
        if (eq <= 0) throw new InvalidArgumentError(`'${item}' must look like CUDA0=24GiB.`);
        const name = parseDevice(item.slice(0, eq));
        if (name === "CPU") throw new InvalidArgumentError("give the CPU's memory with --ram, not in --devices.");
        if (out.some((d) => d.name === name)) throw new InvalidArgumentError(`${name} is listed twice.`);
        out.push({ name, freeBytes: parseSize(item.slice(eq + 1)) });
    }
    const expect = out.map((_, i) => `CUDA${i}`).join(",");
    if (out.map((d) => d.name).join(",") !== expect) throw new InvalidArgumentError(`devices must be ${expect} in this order.`);
    return out;
}

export function withOffloadOptions(cmd: Command): Command {
    return attachGroup(cmd, "Placement preview:", [
        new Option("--print-placement", "print each tensor's device, the rule that chose it and its size, and per-device memory totals (stdout)"),
        new Option("--dry-run", "print the placement and stop before loading any weights (implies --print-placement)"),
        new Option("--json", "with --print-placement: one JSON document (\"schema\": 1) instead of the tables"),
        new Option("--devices <CUDA0=SIZE,...>", "plan for these GPUs and memory sizes instead of this machine's (with --dry-run)").argParser(parseDeviceSizes),
        new Option("--ram <SIZE>", "RAM to plan against (default: this machine's free memory)").argParser(parseSize)
    ]);
}

export function parseOffloadOptions(raw: Record<string, unknown>): OffloadOptions {
    return {
        printPlacement: raw["printPlacement"] === true,
        dryRun: raw["dryRun"] === true,
        json: raw["json"] === true,
        devices: raw["devices"] as PlacementDevice[] | undefined,
        ram: raw["ram"] as number | undefined
    };
}
