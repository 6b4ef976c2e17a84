// Shared helper for option groups: attaches a list of commander Options to a command under one help heading
// ("Model:", "Context:", …) so every command that reuses a group shows the same grouped help.
import type { Command, Option } from "commander";

export function attachGroup(cmd: Command, heading: string, options: readonly Option[]): Command {
    for (const option of options) cmd.addOption(option.helpGroup(heading));
    return cmd;
}
