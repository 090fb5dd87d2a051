import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { diskFiles, type RevisionFiles } from '../archive/revision-files.js';
import { AppSpecError } from '../report/errors.js';

export const DEFAULT_APPSPEC_NAMES = ['appspec.yml', 'appspec.yaml'] as const;

/**
 * Most an AppSpec file may weigh. Real ones are a few KB (a thousand files entries is about 100 KB);
 * a larger file is not an appspec, and parsing megabytes of YAML would cost the agent memory and time
 * for nothing.
 */
export const MAX_APPSPEC_BYTES = 1024 * 1024;

function tooLarge(shownAs: string, size: number): AppSpecError {
  return new AppSpecError([{
    file: shownAs,
    message: `the AppSpec file is ${size} bytes; an AppSpec file is at most ${MAX_APPSPEC_BYTES} bytes (1 MiB), real ones are a few KB`,
    hint: 'is this the AppSpec file? List files by folder (a files entry copies a whole folder) rather than one entry per file',
  }]);
}

/**
 * The AppSpec file's text, refused with an AppSpecError naming it when it is over MAX_APPSPEC_BYTES or
 * unreadable. On the disk it is measured before it is read; another view (an archive read whole by the
 * dry run) has it in memory already.
 */
export function readAppSpecText(path: string, shownAs = path, files: RevisionFiles = diskFiles): string {
  if (files !== diskFiles) {
    let text: string;
    try {
      text = files.readText(path);
    } catch (error) {
      throw new AppSpecError([{ file: shownAs, message: `cannot read the AppSpec file: ${(error as Error).message}` }]);
    }
    const size = Buffer.byteLength(text);
    if (size > MAX_APPSPEC_BYTES) throw tooLarge(shownAs, size);
    return text;
  }
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (error) {
    throw new AppSpecError([{ file: shownAs, message: `cannot read the AppSpec file: ${(error as Error).message}` }]);
  }
  try {
    const size = fstatSync(fd).size;
    if (size > MAX_APPSPEC_BYTES) throw tooLarge(shownAs, size);
    // Read through the descriptor that was measured: the file cannot grow between the check and the read.
    const buffer = Buffer.alloc(size);
    let length = 0;
    while (length < size) {
      const read = readSync(fd, buffer, length, size - length, length);
      if (read === 0) break;
      length += read;
    }
    return buffer.subarray(0, length).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

const APPSPEC_DOC_URL = 'http://docs.aws.amazon.com/codedeploy/latest/userguide/reference-appspec-file.html';

/**
 * The AppSpec file of an unpacked revision: `appspec.yml`, else `appspec.yaml`; a name of its own
 * (`-A deploy-spec.yml`) is that file or an error naming it, never silently another file. Install,
 * hooks, noop checks and validate all use this one lookup; the hooks of AWS's agent do not fall back to
 * `.yaml`, so a bundle with only `appspec.yaml` failed at BeforeInstall there.
 */
export function findAppSpec(archiveDir: string, name?: string, files: RevisionFiles = diskFiles): string {
  const directory = resolve(archiveDir);
  const ownName = name !== undefined && name !== '' && !(DEFAULT_APPSPEC_NAMES as readonly string[]).includes(name);
  const candidates = ownName ? [name] : [...new Set([...(name ? [name] : []), ...DEFAULT_APPSPEC_NAMES])];
  for (const candidate of candidates) {
    const path = join(directory, candidate);
    if (isFile(files, path)) return path;
  }
  const wanted = name ?? DEFAULT_APPSPEC_NAMES[0];
  const others = candidates.filter((candidate) => candidate !== wanted).map((candidate) => `"${candidate}"`);
  const nested = nestedAppSpec(directory, files);
  throw new AppSpecError([
    {
      message:
        `The CodeDeploy agent did not find an AppSpec file within the unpacked revision directory at revision-relative path "${wanted}". ` +
        `The revision was unpacked to directory "${directory}", and the AppSpec file was expected but not found at path "${join(directory, wanted)}". ` +
        `Consult the AWS CodeDeploy Appspec documentation for more information at ${APPSPEC_DOC_URL}`,
      hint: ownName
        ? ownNameHint(directory, wanted, files)
        : nested
          ? `found ${nested}, but the AppSpec file must be at the top of the revision, not in a sub-folder (also looked for ${others.join(' and ')})`
          : `also looked for ${others.join(' and ')}; put the AppSpec file at the top of the revision, or name it with --appspec-filename`,
    },
  ]);
}

/** A name of its own was asked for and is missing: the default file is not used in its place. */
function ownNameHint(directory: string, wanted: string, files: RevisionFiles): string {
  const present = DEFAULT_APPSPEC_NAMES.find((candidate) => isFile(files, join(directory, candidate)));
  return present
    ? `the revision has no ${wanted}, but it has ${present}: leave out --appspec-filename (-A) to use it, or add ${wanted} to the bundle`
    : `the revision has no ${wanted}: add it at the top of the bundle, or fix the name given with --appspec-filename (-A)`;
}

function isFile(files: RevisionFiles, path: string): boolean {
  try {
    return files.stat(path)?.isFile() ?? false;
  } catch {
    return false;
  }
}

/** `sub/appspec.yml` one level down: the usual cause when a bundle was zipped from outside its folder. */
function nestedAppSpec(directory: string, files: RevisionFiles): string | undefined {
  let entries;
  try {
    entries = files.readdir(directory);
  } catch {
    return undefined;
  }
  for (const entry of entries) {
    if (!entry.isDirectory()) continue;
    const found = DEFAULT_APPSPEC_NAMES.find((candidate) => isFile(files, join(directory, entry.name, candidate)));
    if (found) return `${entry.name}/${found}`;
  }
  return undefined;
}
