import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { findTool, toolCommand } from '../../src/util/find-tool.js';
import { useTempDir } from '../helpers/tmp.js';

describe('finding a system tool', () => {
  const tmp = useTempDir('cda-find-tool-');

  it('finds an executable on PATH, skipping relative folders and files that are not executable', () => {
    const bin = join(tmp.dir, 'bin');
    mkdirSync(bin);
    writeFileSync(join(bin, 'cda-tool-plain'), '');
    writeFileSync(join(bin, 'cda-tool-exec'), '#!/bin/sh\n');
    chmodSync(join(bin, 'cda-tool-exec'), 0o755);
    expect(findTool('cda-tool-exec', `relative:${bin}`)).toBe(join(bin, 'cda-tool-exec'));
    expect(findTool('cda-tool-plain', bin)).toBeUndefined();
  });

  it('also looks in the system folders a service PATH may lack', () => {
    expect(findTool('sh', '')).toMatch(/^\/(usr\/)?bin\/sh$/);
  });

  it('a missing tool: findTool says so (undefined), toolCommand runs it by its bare name', () => {
    expect(findTool('cda-no-such-tool', tmp.dir)).toBeUndefined();
    expect(toolCommand('cda-no-such-tool', tmp.dir)).toBe('cda-no-such-tool');
    expect(toolCommand('sh', '')).toMatch(/^\/(usr\/)?bin\/sh$/);
  });
});
