import pkg from '../package.json' with { type: 'json' };

/** The agent's own version (what `--version` prints). */
export const AGENT_VERSION: string = pkg.version;
