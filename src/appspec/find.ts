import { join, resolve } from 'node:path';
import { diskFiles, type RevisionFiles } from '../archive/revision-files.js';
import { AppSpecError } from '../report/errors.js';

export const DEFAULT_APPSPEC_NAMES = ['appspec.yml', 'appspec.yaml'] as const;

const APPSPEC_DOC_URL = 'http://docs.aws.amazon.com/codedeploy/latest/userguide/reference-appspec-file.html';

/**
 * The AppSpec file of an unpacked revision: `appspec.yml`, else `appspec.yaml`; a name of its own
 * (`-A deploy-spec.yml`) is that file or an error naming it, never silently another file. Install,
 * hooks, noop checks and validate all use this one lookup; the anchor's hooks do not fall back to
 * `.yaml`, so a bundle with only `appspec.yaml` failed at BeforeInstall (§10.12).
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
