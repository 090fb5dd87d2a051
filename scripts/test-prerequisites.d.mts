export interface Prerequisite {
  command: string;
  pkg: string;
  purpose: string;
}
export function toolsDir(env?: NodeJS.ProcessEnv): string;
export function readPrerequisites(file?: string): Prerequisite[];
export function howToGet(tool: Prerequisite): string;
